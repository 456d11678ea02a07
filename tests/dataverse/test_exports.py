"""The public surface is exactly `__all__`, sorted, and nothing else from gtmsync leaks in."""

from __future__ import annotations

import ast
from pathlib import Path

import gtmsync.dataverse as dataverse


class TestExportedMembers:
    def test_all_is_sorted_and_unique(self) -> None:
        assert dataverse.__all__ == sorted(set(dataverse.__all__))

    def test_every_exported_name_exists(self) -> None:
        missing = [n for n in dataverse.__all__ if not hasattr(dataverse, n)]
        assert missing == []

    def test_public_classes_are_exported(self) -> None:
        public = {
            n for n, v in vars(dataverse).items() if isinstance(v, type) and not n.startswith("_")
        }
        assert public <= set(dataverse.__all__)

    def test_package_imports_nothing_else_from_gtmsync(self) -> None:
        package = Path(dataverse.__file__).parent
        offenders = []
        for path in package.glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    module = node.module
                elif isinstance(node, ast.Import):
                    module = node.names[0].name
                else:
                    continue
                if module.startswith("gtmsync") and not module.startswith("gtmsync.dataverse"):
                    offenders.append((path.name, module))
                if module.startswith("gtmsync.dataverse_local"):
                    offenders.append((path.name, module))
        assert offenders == []
