"""The reviewer and Medical Director web app, mounted under /ui by `install`."""

from priorauth.ui.app import install

__all__ = ["install"]
