"""Dataverse Web API client library. Imports nothing else from gtmsync.

from gtmsync.dataverse import ClientCredentials, DataverseClient, MsalAuth, MsalConfig, org_scope

config = MsalConfig(client_id, authority=f"https://login.microsoftonline.com/{tenant}",
                    client_secret=secret)
auth = MsalAuth(ClientCredentials(config, scope=org_scope(org_url, delegated=False)))
with DataverseClient(org_url, auth=auth, on_request=count_call) as client:
    for row in client.query("accounts", select=["name"], page_size=500):
        ...
"""

from gtmsync.dataverse import odata
from gtmsync.dataverse.auth import (
    AuthCodeFlow,
    ClientCredentials,
    DelegatedTokens,
    MsalAuth,
    MsalConfig,
    SignedIn,
    StaticToken,
    TokenProvider,
    org_scope,
)
from gtmsync.dataverse.batch import BatchOperation, ChangeSet, OperationResult
from gtmsync.dataverse.changes import ChangeFeed, ChangePage, Deletion
from gtmsync.dataverse.client import (
    DataverseClient,
    RequestInfo,
    ResponseInfo,
    UpsertResult,
    WhoAmI,
)
from gtmsync.dataverse.errors import (
    APIError,
    AuthenticationError,
    BatchFormatError,
    BudgetExceededError,
    ChangeTokenExpiredError,
    ConcurrencyError,
    ConfigurationError,
    DataverseError,
    DuplicateRecordError,
    NotFoundError,
    NotSupportedError,
    PrivilegeError,
    ReconnectRequiredError,
    ServerError,
    ThrottledError,
    TransportError,
    ValidationError,
)
from gtmsync.dataverse.metadata import (
    AlternateKeyInfo,
    AttributeInfo,
    MetadataCache,
    OptionInfo,
    TableInfo,
)
from gtmsync.dataverse.paging import NextLinkPager
from gtmsync.dataverse.records import Lookup, Page, Record
from gtmsync.dataverse.retry import RetryPolicy

__all__ = [
    "APIError",
    "AlternateKeyInfo",
    "AttributeInfo",
    "AuthCodeFlow",
    "AuthenticationError",
    "BatchFormatError",
    "BatchOperation",
    "BudgetExceededError",
    "ChangeFeed",
    "ChangePage",
    "ChangeSet",
    "ChangeTokenExpiredError",
    "ClientCredentials",
    "ConcurrencyError",
    "ConfigurationError",
    "DataverseClient",
    "DataverseError",
    "DelegatedTokens",
    "Deletion",
    "DuplicateRecordError",
    "Lookup",
    "MetadataCache",
    "MsalAuth",
    "MsalConfig",
    "NextLinkPager",
    "NotFoundError",
    "NotSupportedError",
    "OperationResult",
    "OptionInfo",
    "Page",
    "PrivilegeError",
    "ReconnectRequiredError",
    "Record",
    "RequestInfo",
    "ResponseInfo",
    "RetryPolicy",
    "ServerError",
    "SignedIn",
    "StaticToken",
    "TableInfo",
    "ThrottledError",
    "TokenProvider",
    "TransportError",
    "UpsertResult",
    "ValidationError",
    "WhoAmI",
    "odata",
    "org_scope",
]
