"""The store profile of the e2e phase: py-spy's collapsed stacks read into shares."""

from __future__ import annotations

import pytest

from bench.findings import _store_profile_sentence
from bench.report import store_profile_markdown
from bench.store_profile import summarise

pytestmark = pytest.mark.unit

_REPLACE = ("thread (0x7f01);_worker (concurrent/futures/thread.py:83);"
            "NeoSQLiteHandler.handle_command (nx_27017/handler.py:1449);"
            "Collection.replace_one (neosqlite/collection/__init__.py:624);"
            "CRUDOperationsMixin._internal_insert "
            "(neosqlite/collection/query_helper/crud_operations.py:{line})")
_FIND = ("thread (0x7f01);NeoSQLiteHandler.handle_command (nx_27017/handler.py:1200);"
         "Collection.find (neosqlite/collection/__init__.py:300);dumps (json/__init__.py:238)")
_WIRE = "thread (0x7f00);handle_client (nx_27017/server.py:79);decode (bson/__init__.py:1124)"


def test_samples_are_shared_out_by_operation_package_and_function() -> None:
    collapsed = "\n".join([f"{_REPLACE.format(line=89)} 5", f"{_REPLACE.format(line=47)} 1", f"{_FIND} 2",
                           f"{_WIRE} 2", "garbage without a count", ""])
    profile = summarise(collapsed)
    assert profile is not None and profile["samples"] == 10
    assert profile["operations"][:2] == [["replace_one", 0.6], ["find", 0.2]]
    assert ["connections (reading, BSON, the event loop)", 0.2] in profile["operations"]
    assert dict(profile["packages"]) == {"neosqlite (queries, documents, SQL)": 0.6, "JSON": 0.2, "BSON": 0.2}
    # one function however many of its lines were sampled
    assert profile["functions"][0] == [
        "CRUDOperationsMixin._internal_insert (neosqlite/collection/query_helper/crud_operations.py)", 0.6]


def test_no_samples_is_no_profile_and_the_report_says_why() -> None:
    assert summarise("") is None
    assert "py-spy is not installed" in store_profile_markdown({"unavailable": "py-spy is not installed"})[1]
    shown = store_profile_markdown(summarise(f"{_FIND} 3"))
    assert "find 100%" in shown[1] and "3 samples" in shown[1]


def test_the_e2e_note_names_the_stores_largest_shares() -> None:
    profile = summarise(f"{_REPLACE.format(line=89)} 3\n{_WIRE} 1")
    sentence = _store_profile_sentence(profile)
    assert "4 samples" in sentence and "replace_one 75%" in sentence and "_internal_insert" in sentence
    assert _store_profile_sentence({"unavailable": "py-spy is not installed"}) == ""
