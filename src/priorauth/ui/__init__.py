"""The reviewer and Medical Director web app, mounted under /ui by `install`."""

from priorauth.ui.app import install
from priorauth.ui.users import ensure_demo_users

__all__ = ["ensure_demo_users", "install"]
