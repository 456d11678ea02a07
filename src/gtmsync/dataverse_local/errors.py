"""Dataverse's JSON error shape and the codes the local data plane raises (spec §8).

Every failure in the data plane is a `DataverseLocalError`; `webapi.py` renders it as
`{"error": {"code", "message"}}` with the headers Dataverse sends, so clients parse local
errors with the same code they use against a tenant.
"""

from __future__ import annotations

import json
import uuid

JSON_CONTENT_TYPE = "application/json; odata.metadata=minimal"


class DataverseLocalError(Exception):
    """An error answered to the client with Dataverse's status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self, *, details: bool = False) -> bytes:
        """The JSON body; `details` adds the annotations Dataverse sends when the request
        asked for them with `Prefer: odata.include-annotations` (spec §8.1)."""
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if details:
            hex_code = self.code[2:] if self.code.startswith("0x") else self.code
            error.update(
                {
                    "@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus": "0",
                    "@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode": str(
                        int(hex_code, 16) - (1 << 32)
                        if hex_code and int(hex_code, 16) >= 1 << 31
                        else 0
                    ),
                    "@Microsoft.PowerApps.CDS.HelpLink": (
                        "http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException"
                        f"%3a{hex_code}&client=platform"
                    ),
                    "@Microsoft.PowerApps.CDS.TraceText": "",
                    "@Microsoft.PowerApps.CDS.InnerError.Message": self.message,
                }
            )
        return json.dumps({"error": error}).encode()

    def headers(self) -> dict[str, str]:
        return {"Content-Type": JSON_CONTENT_TYPE, "OData-Version": "4.0"}


def not_found(table: str, record_id: uuid.UUID | str) -> DataverseLocalError:
    return DataverseLocalError(404, "0x80040217", f"{table} With Id = {record_id} Does Not Exist")


def resource_not_found(path: str) -> DataverseLocalError:
    return DataverseLocalError(404, "0x80060888", f"Resource not found for the segment '{path}'.")


def bad_request(message: str, code: str = "0x80060888") -> DataverseLocalError:
    return DataverseLocalError(400, code, message)


def unknown_property(table: str, name: str) -> DataverseLocalError:
    return DataverseLocalError(
        400,
        "0x0",
        f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table}'.",
    )


def invalid_payload_property(table: str, name: str) -> DataverseLocalError:
    return DataverseLocalError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{table}', For more "
        f"information on this error please follow this help link "
        f"https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
        f"Microsoft.OData.ODataException: Invalid property '{name}' was found in entity "
        f"'Microsoft.Dynamics.CRM.{table}'.",
    )


def undeclared_annotation_property(name: str) -> DataverseLocalError:
    return DataverseLocalError(
        400,
        "0x80048d19",
        f"An undeclared property '{name}' which only has property annotations in the payload "
        "but no property value was found in the payload. In OData, only declared navigation "
        "properties and declared named streams can be represented as properties without values.",
    )


def validation(message: str) -> DataverseLocalError:
    return DataverseLocalError(400, "0x80044331", f"A validation error occurred.  {message}")


def max_length_exceeded(table: str, attribute: str, max_length: int) -> DataverseLocalError:
    return validation(
        f"The length of the '{attribute}' attribute of the '{table}' entity exceeded the "
        f"maximum allowed length of '{max_length}'."
    )


def concurrency_mismatch() -> DataverseLocalError:
    return DataverseLocalError(
        412,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )


def record_exists() -> DataverseLocalError:
    return DataverseLocalError(
        412, "0x80040237", "A record with matching key values already exists."
    )


def duplicate_key(key_name: str, attributes: list[str]) -> DataverseLocalError:
    return DataverseLocalError(
        412,
        "0x80060892",
        f"Entity Key {key_name} violated. A record with the same value for "
        f"{','.join(attributes)} already exists. A duplicate record cannot be created. Try "
        f"again with a different value.",
    )


def duplicate_record() -> DataverseLocalError:
    return DataverseLocalError(412, "0x80040237", "Cannot insert duplicate key.")


def invalid_key(table: str) -> DataverseLocalError:
    return DataverseLocalError(
        400,
        "0x80060888",
        f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{table}'. "
        f"Ensure that the names and number of key properties match the declared or alternate "
        f"key properties for the resource 'Microsoft.Dynamics.CRM.{table}'.",
    )


def duplicates_found() -> DataverseLocalError:
    return DataverseLocalError(
        500,
        "0x80040333",
        "A record was not created or updated because a duplicate of the current record "
        "already exists.",
    )


def missing_privilege(
    user_id: uuid.UUID, access: str, table: str, object_type_code: int
) -> DataverseLocalError:
    privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, f"prv{access}{table}")
    return DataverseLocalError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8, roleCount=1, privilegeCount=0, accessMode=0), "
        f"is missing prv{access}{table.capitalize()} privilege (Id={privilege_id}) on "
        f"OTC={object_type_code} for entity '{table}'. context.Caller={user_id}. Consider "
        f"assigning a role with the required access level to the user or team.",
    )


def secured_attribute(table: str, attribute: str) -> DataverseLocalError:
    return DataverseLocalError(
        403,
        "0x80048405",
        f"Access is denied. The user does not have update permissions to the secured field "
        f"'{attribute}' of the '{table}' entity.",
    )


def unterminated_literal(position: int, text: str) -> DataverseLocalError:
    return DataverseLocalError(
        400, "0x0", f"There is an unterminated literal at position {position} in '{text}'."
    )


def change_tracking_option(option: str) -> DataverseLocalError:
    return DataverseLocalError(
        400,
        "0x80060888",
        f'The "${option}" query parameter isn\'t supported when Change Tracking is enabled.',
    )
