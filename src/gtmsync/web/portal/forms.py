"""Portal forms as pydantic models (`Annotated[Form, Form()]` in endpoints).

Fields default to empty strings so a half-filled form is re-rendered with a message next to
the field, instead of failing FastAPI's validation with a bare 422. Format rules (email,
password length) stay in the platform service, which names the field in its `UserError`.
"""

from __future__ import annotations

from pydantic import BaseModel

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Role


class SignInForm(BaseModel):
    email: str = ""
    password: str = ""
    org: str = ""
    next: str = ""

    @property
    def org_slug(self) -> str | None:
        return self.org.strip().lower() or None


class ApiTokenForm(BaseModel):
    name: str = ""


class UserCreateForm(BaseModel):
    name: str = ""
    email: str = ""
    role: str = Role.USER.value
    password: str = ""

    def parsed_role(self) -> Role:
        try:
            return Role(self.role)
        except ValueError:
            raise UserError(
                f"'{self.role}' is not a role.",
                field="role",
                fix="Choose " + " or ".join(r.value for r in Role) + ".",
            ) from None

    def require_name(self) -> str:
        name = self.name.strip()
        if not name:
            raise UserError(
                "Enter the person's name.", field="name", fix="For example: Ada Lovelace."
            )
        return name
