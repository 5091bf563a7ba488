"""What the local runner assumes about pgserver's private files (local_runner/embedded.py edits them to recover a
killed run, because pgserver has no public API for it). If pgserver stops keeping them, or changes their shape,
this test fails: then the recovery code must change, or can go."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pgserver


def test_pgserver_keeps_a_json_list_of_handle_pids_in_the_data_directory(tmp_path: Path) -> None:
    # Given an embedded server started by this process
    pgdata = tmp_path / "pgdata"
    server = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    try:
        # Then pgserver counts this process as a handle in pgdata/.handle_pids.json, a JSON list of pids
        handles = pgdata / ".handle_pids.json"
        assert handles.is_file(), sorted(p.name for p in pgdata.iterdir())
        pids = json.loads(handles.read_text())
        assert isinstance(pids, list) and os.getpid() in pids
        # And PostgreSQL's own postmaster.pid starts with the server's pid (what recover_stale_state reads)
        first_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        assert int(first_line) > 0
    finally:
        server.cleanup()
