"""The entry list store: real SQLite files in a temporary state directory."""

import io
import os
import sqlite3
import stat

import pytest
from accessd.protocols.credential import Credential

from accessd.store.entrylist import (
    CSV_COLUMNS,
    MIGRATIONS,
    DuplicateCredential,
    EntryList,
    HolderNotFound,
    ImportFailed,
    InvalidField,
    PinSpaceExhausted,
    connect,
    migrate,
    rows_to_csv,
)


@pytest.fixture
def store(tmp_path):
    s = EntryList(tmp_path)
    yield s
    s.close()


def card_bits(hex_value: str, bit_length: int) -> str:
    return Credential.card(hex_value, bit_length).bits


def test_add_and_find_each_credential_kind(store):
    ann = store.add(first_name="Ann", last_name="Lee", card="2C0A5B", bit_length=26, pin="482913", qr="QR-ANN")
    assert (ann.has_card, ann.has_pin, ann.has_qr) == (True, True, True)
    assert store.find_card(card_bits("2C0A5B", 26)) == ann
    assert store.find_pin("482913") == ann
    assert store.find_qr("QR-ANN") == ann
    assert store.find(Credential(kind="pin", pin="482913")) == ann
    assert store.find(Credential(kind="qr", qr="QR-ANN")) == ann
    # same value, other bit length: another card
    assert store.find_card(card_bits("2C0A5B", 34)) is None
    assert store.find_pin("482914") is None
    assert store.find_qr("qr-ann") is None
    assert store.pin_matches(ann.id, "482913") and not store.pin_matches(ann.id, "111111")


def test_card_matches_by_decoded_format_fc_cn(store):
    bob = store.add(first_name="Bob", format="Wiegand26", facility_code=12, card_number=3456)
    assert store.describe(bob)["card"] == {
        "hex": None,
        "bit_length": None,
        "format": "H10301",
        "facility_code": 12,
        "card_number": 3456,
    }
    # a read decoded by either name of the format, any raw bits
    assert store.find_card("1" * 26, "H10301", 12, 3456) == bob
    assert store.find_card("1" * 26, "wiegand26", 12, 3456) == bob
    assert store.find_card("1" * 26, "H10301", 13, 3456) is None
    assert store.find_card("1" * 26, None, None, None) is None
    # a format without facility code
    cy = store.add(first_name="Cy", format="C1k48s", card_number=99)
    assert store.find_card("0" * 48, "C1k48s", None, 99) == cy
    assert store.find_card("0" * 48, "C1k48s", 0, 99) is None


@pytest.mark.parametrize(
    "first, second, field",
    [
        ({"card": "ABC", "bit_length": 26}, {"card": "0abc", "bit_length": 26}, "card"),
        ({"format": "H10301", "facility_code": 1, "card_number": 2}, {"format": "Wiegand26", "facility_code": 1, "card_number": 2}, "card"),
        ({"pin": "1234"}, {"pin": "1234"}, "pin"),
        ({"qr": "X"}, {"qr": "X"}, "qr"),
    ],
)
def test_a_credential_belongs_to_one_holder(store, first, second, field):
    store.add(first_name="Ann", **first)
    with pytest.raises(DuplicateCredential) as exc:
        store.add(first_name="Bob", **second)
    assert exc.value.field == field
    assert "already used by holder 'Ann'" in str(exc.value)
    if field == "pin":
        assert "1234" not in str(exc.value)
    # the failed add left nothing behind (one transaction)
    assert store.count() == 1
    with pytest.raises(HolderNotFound):
        store.get("Bob")


def test_first_name_is_unique(store):
    store.add(first_name="Ann")
    with pytest.raises(DuplicateCredential, match="first_name: 'Ann' is already used"):
        store.add(first_name="Ann", last_name="Other")


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"first_name": ""}, "first_name", "a non-empty name"),
        ({"first_name": "A", "card": "XYZ", "bit_length": 26}, "card", "hexadecimal digits"),
        ({"first_name": "A", "card": "FFFFFFF", "bit_length": 26}, "card", "fits in 26 bits"),
        ({"first_name": "A", "card": "FF"}, "bit_length", "bit length"),
        ({"first_name": "A", "bit_length": 26}, "card", "hex value"),
        ({"first_name": "A", "format": "H10301", "facility_code": 1}, "card_number", "card number"),
        ({"first_name": "A", "facility_code": 1, "card_number": 2}, "format", "format name"),
        ({"first_name": "A", "pin": "12a4"}, "pin", "decimal digits"),
        ({"first_name": "A", "pin": "123"}, "pin", "4 to 16"),
        ({"first_name": "A", "uses": "three"}, "uses", "whole number"),
        ({"first_name": "A", "uses": -1}, "uses", "whole number"),
        ({"first_name": "A", "valid_to": "next week"}, "valid_to", "ISO 8601"),
        ({"first_name": "A", "valid_from": "2026-05-01", "valid_to": "2026-04-30"}, "valid_to", "after valid_from"),
        ({"first_name": "A", "suspended": "maybe"}, "suspended", "true/false"),
        ({"first_name": "A", "access_time": "0"}, "access_time", "1–3600"),
        ({"first_name": "A", "colour": "red"}, "colour", "holder fields"),
    ],
)
def test_invalid_fields_name_the_field(store, fields, field, message):
    with pytest.raises(InvalidField) as exc:
        store.add(**fields)
    assert exc.value.field == field
    assert message in str(exc.value)
    assert str(exc.value).startswith(f"{field}: expected")
    if field == "pin":
        assert fields["pin"] not in str(exc.value)


def test_times_are_normalised_and_a_same_day_window_is_allowed(store):
    h = store.add(first_name="A", valid_from="2026-05-01", valid_to=" 2026-05-01 ")
    assert (h.valid_from, h.valid_to) == ("2026-05-01", "2026-05-01")
    h = store.add(first_name="B", valid_from="2026-05-01T08:00:00.250+02:00", valid_to="2026-05-01T18:00Z")
    assert (h.valid_from, h.valid_to) == ("2026-05-01T08:00:00+02:00", "2026-05-01T18:00:00+00:00")


def test_update_and_remove(store):
    ann = store.add(first_name="Ann", card="10", bit_length=26, pin="1111", uses=2)
    ann2 = store.update("Ann", last_name="Lee", pin="2222", suspended=True)
    assert ann2.id == ann.id and ann2.last_name == "Lee" and ann2.suspended and ann2.uses == 2
    assert store.find_pin("1111") is None and store.find_pin("2222") == ann2
    store.update(str(ann.id), card=None, uses=None)
    assert store.find_card(card_bits("10", 26)) is None
    assert store.get(ann.id).uses is None and not store.get(ann.id).has_card
    store.add(first_name="Bob", qr="B")
    with pytest.raises(DuplicateCredential):
        store.update("Ann", qr="B")
    with pytest.raises(DuplicateCredential):
        store.update("Ann", first_name="Bob")
    assert store.get("Ann").first_name == "Ann"
    store.update("Ann", valid_from="2026-02-01")
    with pytest.raises(InvalidField, match="after valid_from"):
        store.update("Ann", valid_to="2026-01-01")
    assert store.remove("Ann").first_name == "Ann"
    with pytest.raises(HolderNotFound, match="no holder 'Ann'"):
        store.get("Ann")
    # its credentials went with it
    assert store.conn.execute("SELECT count(*) FROM credentials WHERE holder_id = ?", (ann.id,)).fetchone()[0] == 0
    with pytest.raises(HolderNotFound):
        store.remove(ann.id)


def test_consume_use_counts_down_and_stops_at_zero(store):
    h = store.add(first_name="Three", uses=3)
    assert [store.consume_use(h.id) for _ in range(5)] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
        (False, 0),
    ]
    u = store.add(first_name="Unlimited")
    assert store.consume_use(u.id) == (True, None)
    assert store.consume_use(9999) == (False, None)


def test_uses_survive_reopening(tmp_path):
    s = EntryList(tmp_path)
    h = s.add(first_name="Three", uses=3)
    s.consume_use(h.id)
    s.close()
    s = EntryList(tmp_path)
    assert s.get("Three").uses == 2
    s.close()


def test_pin_never_in_the_database_file_and_key_is_private(tmp_path):
    pin = "73915284"
    s = EntryList(tmp_path)
    s.add(first_name="Ann", pin=pin)
    s.import_csv(["first_name,pin", "Bob,55501234"])
    s.update("Ann", notes="changed")
    files = [p for p in tmp_path.iterdir() if p.name.startswith("entrylist.db")]
    assert any(p.name == "entrylist.db-wal" for p in files)  # the WAL is searched too
    for p in files:
        data = p.read_bytes()
        assert pin.encode() not in data and b"55501234" not in data, p
        assert pin.encode("utf-16-le") not in data
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert pin.encode() not in (tmp_path / "entrylist.db").read_bytes()
    key = tmp_path / "pin.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    s.close()
    # the same key is used after a restart, so the PIN still matches
    s = EntryList(tmp_path)
    assert s.find_pin(pin).first_name == "Ann"
    s.close()


def test_pin_hash_depends_on_the_device_key(tmp_path):
    a, b = EntryList(tmp_path / "a"), EntryList(tmp_path / "b")
    assert a.pin_hash("1234") != b.pin_hash("1234")
    assert a.secret != b.secret


def test_key_file_with_loose_mode_is_tightened_and_a_wrong_key_refused(tmp_path):
    EntryList(tmp_path).close()
    key = tmp_path / "pin.key"
    os.chmod(key, 0o644)
    EntryList(tmp_path).close()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.write_bytes(b"short")
    with pytest.raises(Exception, match="32-byte PIN key"):
        EntryList(tmp_path)


def test_generate_pin_is_unique_and_of_the_configured_length(store):
    digits = iter([1, 2, 3, 4, 1, 2, 3, 4, 9, 9, 9, 9])
    store.add(first_name="Ann", pin="1234")
    pin = store.generate_pin(4, randbelow=lambda n: next(digits))
    assert pin == "9999"  # 1234 is taken, so it drew again
    assert len(store.generate_pin(8)) == 8 and store.generate_pin(8).isdigit()
    with pytest.raises(InvalidField):
        store.generate_pin(3)
    assert store.generate_pin(4, randbelow=lambda n: 1) == "1111"
    store.add(first_name="Taken", pin="1111")
    with pytest.raises(PinSpaceExhausted, match="longer PINs"):
        store.generate_pin(4, randbelow=lambda n: 1)


def test_lookups_use_the_indexes(store):
    plans = {
        "raw": store._sql_raw,
        "decoded": store._sql_decoded,
        "pin": store._sql_pin,
        "qr": store._sql_qr,
    }
    args = {"raw": (26, "1"), "decoded": ("H10301", 1, 2), "pin": (b"x",), "qr": ("q",)}
    for name, sql in plans.items():
        plan = " ".join(row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, args[name]))
        assert "USING INDEX credentials_" in plan or "USING COVERING INDEX credentials_" in plan, (name, plan)
        assert "SCAN credentials" not in plan, (name, plan)


def test_migrations_upgrade_an_old_database_keeping_its_data(tmp_path):
    conn = connect(tmp_path / "entrylist.db")
    assert migrate(conn, target=1) == 1
    conn.execute("INSERT INTO holders (first_name) VALUES ('Old')")
    conn.close()
    s = EntryList(tmp_path)
    assert s.version == len(MIGRATIONS) == 3
    assert s.get("Old").first_name == "Old"
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    conn = sqlite3.connect(tmp_path / "entrylist.db")
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(Exception, match="version 99 is newer"):
        EntryList(tmp_path)


# ---------------------------------------------------------------- lockout counters


def test_failures_lock_a_reader_out_and_survive_restart(tmp_path):
    s = EntryList(tmp_path)
    kw = dict(attempts=3, window=60, duration=300)
    assert s.record_failure("r1", 1000, **kw) == (1, None)
    assert s.record_failure("r1", 1010, **kw) == (2, None)
    assert s.record_failure("r2", 1010, **kw) == (1, None)  # another reader counts apart
    s.close()
    s = EntryList(tmp_path)
    assert s.record_failure("r1", 1020, **kw) == (3, 1320)
    assert s.locked_until("r1", 1100) == 1320
    assert s.locked_until("r2", 1100) is None
    s.close()
    s = EntryList(tmp_path)
    assert s.locked_until("r1", 1319.9) == 1320
    assert s.locked_until("r1", 1320) is None
    # counters restarted with the lockout
    assert s.record_failure("r1", 1400, **kw) == (1, None)
    s.close()


def test_failures_outside_the_window_do_not_count(store):
    kw = dict(attempts=3, window=60, duration=300)
    store.record_failure("r1", 1000, **kw)
    store.record_failure("r1", 1030, **kw)
    assert store.record_failure("r1", 1061, **kw) == (2, None)  # 1000 fell out of the window
    store.clear_failures("r1")
    assert store.record_failure("r1", 1062, **kw) == (1, None)


# ---------------------------------------------------------------- CSV


GOOD_CSV = '''first_name,last_name,card,bit_length,format,facility_code,card_number,pin,qr,valid_from,valid_to,uses,suspended,notes
Ann,Lee,2C0A5B,26,,,,482913,,2026-01-01,2026-12-31,5,false,"front desk, day shift"
Bob,,,,H10301,12,3456,,QR-BOB,,,,yes,
"Cy ""the cat""",Cat,,,,,,,,,2026-06-01T18:00:00+02:00,,,"two
lines"
'''


def test_import_all_columns_and_export_round_trip(store):
    report = store.import_csv(GOOD_CSV.splitlines(keepends=True))
    assert (report.rows, report.added) == (3, 3)
    ann = store.get("Ann")
    assert (ann.last_name, ann.uses, ann.valid_from, ann.valid_to, ann.notes) == (
        "Lee",
        5,
        "2026-01-01",
        "2026-12-31",
        "front desk, day shift",
    )
    assert store.find_pin("482913") == ann
    assert store.find_card("0" * 26, "Wiegand26", 12, 3456).first_name == "Bob"
    assert store.get("Bob").suspended
    assert store.get('Cy "the cat"').notes == "two\nlines"
    exported = rows_to_csv(store.export_rows(), header=True)
    assert exported.splitlines()[0] == ",".join(CSV_COLUMNS)
    # re-import into an empty list gives the same holders (PINs are not exported)
    other = EntryList(store.state_dir / "other")
    other.import_csv(exported.splitlines(keepends=True))
    for name in ("Ann", "Bob", 'Cy "the cat"'):
        a, b = store.describe(store.get(name)), other.describe(other.get(name))
        a.pop("id"), b.pop("id")
        if name == "Ann":
            assert a.pop("pin") is True and b.pop("pin") is False
        assert a == b
    other.close()


def test_import_is_all_or_nothing_and_names_line_and_field(store):
    store.add(first_name="Existing", card="ABCDEF", bit_length=26)
    text = (
        "first_name,card,bit_length,pin,uses,valid_to\n"
        "Ok1,111,26,1111,,\n"
        "Bad,XYZ,26,,,\n"  # line 3: card
        "Ok2,222,26,,,\n"
        ",333,26,,,\n"  # line 5: first_name
        "Dup,ABCDEF,26,,,\n"  # line 6: card used by Existing
        "Ok1,444,26,,,\n"  # line 7: first name used earlier in the file
        "Pin2,,,1111,,\n"  # line 8: PIN used earlier in the file
        "Short,1,26\n"  # line 9: column count
        "Later,555,26,,seven,\n"  # line 10: uses
        "Time,666,26,,,tomorrow\n"  # line 11: valid_to
    )
    with pytest.raises(ImportFailed) as exc:
        store.import_csv(text.splitlines(keepends=True))
    found = [(e.line, e.field) for e in exc.value.errors]
    assert found == [
        (3, "card"),
        (5, "first_name"),
        (6, "card"),
        (7, "first_name"),
        (8, "pin"),
        (9, "row"),
        (10, "uses"),
        (11, "valid_to"),
    ]
    message = str(exc.value)
    assert "nothing was changed (8 error(s))" in message
    assert "line 6, card: '0ABCDEF/26 bits' is already used by holder 'Existing'" in message
    assert "line 10, uses: expected a whole number" in message
    assert "1111" not in message  # the PIN is not shown
    # nothing was added
    assert store.count() == 1
    assert store.find_pin("1111") is None


@pytest.mark.parametrize(
    "header, problem",
    [
        ("last_name,card", "first_name column"),
        ("first_name,colour", "colour: expected a column among"),
        ("first_name,first_name", "each column once"),
        ("", "header"),
    ],
)
def test_import_header_errors(store, header, problem):
    with pytest.raises(ImportFailed, match=problem) as exc:
        store.import_csv([header + "\n", "Ann,x\n"] if header else [])
    assert all(e.line == 1 for e in exc.value.errors)
    assert store.count() == 0


def test_import_reports_progress_for_large_files(store):
    seen = []
    lines = ["first_name,card,bit_length\n"] + [f"H{i},{i:X},32\n" for i in range(25000)]
    report = store.import_csv(lines, progress=seen.append)
    assert report.added == 25000 and seen == [10000, 20000]
    assert store.find_card(card_bits(f"{24999:X}", 32)).first_name == "H24999"
    page = store.export_rows(after_id=0, limit=1000)
    assert len(page) == 1000 and page[-1]["first_name"] == "H999"
    assert store.export_rows(after_id=page[-1]["id"], limit=1)[0]["first_name"] == "H1000"
    assert [h.first_name for h in store.list(search="H2499", limit=3)] == ["H2499", "H24990", "H24991"]


def test_import_stops_collecting_after_1000_errors(store):
    lines = ["first_name,uses\n"] + [f"N{i},x\n" for i in range(1500)]
    with pytest.raises(ImportFailed) as exc:
        store.import_csv(lines)
    assert len(exc.value.errors) == 1000
    assert "(1000 error(s), the first 1000 only)" in str(exc.value)
    assert "… and 980 more" in str(exc.value)


def test_import_line_numbers_count_physical_lines(store):
    text = 'first_name,notes,uses\nAnn,"one\ntwo\nthree",1\nBob,,x\n'
    with pytest.raises(ImportFailed) as exc:
        store.import_csv(text.splitlines(keepends=True))
    assert [(e.line, e.field) for e in exc.value.errors] == [(5, "uses")]


def test_staged_import_bulk_path_and_fallback_naming_errors(store, tmp_path):
    from accessd.store.entrylist import open_staging, parse_csv, stage_rows

    def staged(name, text):
        errors = []
        conn = open_staging(tmp_path / name)
        rows = [(line, f) for line, f in parse_csv(text.splitlines(keepends=True), errors, hash_pin=store.pin_hash) if f]
        stage_rows(conn, rows)
        conn.close()
        return tmp_path / name, errors, len(rows)

    store.add(first_name="Existing", qr="Q1")
    path, errors, n = staged("ok.db", "first_name,card,bit_length,pin,qr\nA,1,26,1111,QA\nB,,,,QB\nC,3,26,,\n")
    report = store.import_staged(path, errors, n)
    assert (report.added, report.rows) == (3, 3)
    assert store.find_pin("1111").first_name == "A" and store.find_qr("QB").first_name == "B"
    assert store.find_card(card_bits("3", 26)).first_name == "C"
    assert store.get("C").id == store.get("B").id + 1
    path, errors, n = staged("bad.db", "first_name,pin,qr\nD,2222,QD\nE,,Q1\nF,2222,\n")
    with pytest.raises(ImportFailed) as exc:
        store.import_staged(path, errors, n)
    assert [(e.line, e.field) for e in exc.value.errors] == [(3, "qr"), (4, "pin")]
    assert store.count() == 4 and store.find_pin("2222") is None
    with pytest.raises(ValueError, match="hash the PIN"):
        stage_rows(open_staging(tmp_path / "x.db"), [(2, {"first_name": "G", "pin": "1234"})])


def test_setting_uses_starts_a_new_count_and_export_shows_what_is_left(store):
    h = store.add(first_name="Ann", uses=3)
    store.consume_use(h.id)
    store.consume_use(h.id)
    assert store.get("Ann").uses == 1
    assert store.export_rows()[0]["uses"] == 1
    assert store.update("Ann", notes="x").uses == 1  # other changes keep the count
    assert store.update("Ann", uses=5).uses == 5
    assert store.consume_use(h.id) == (True, 4)
    assert store.update("Ann", uses="").uses is None


def test_the_door_writes_are_not_blocked_by_a_long_entry_list_write(store):
    import time

    h = store.add(first_name="Ann", uses=3)
    other = connect(store.path)  # e.g. a million-row import committing
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO holders (first_name) VALUES ('Importing')")
    try:
        t0 = time.monotonic()
        assert store.consume_use(h.id) == (True, 2)
        assert store.record_failure("r1", 1000, attempts=3, window=60, duration=60) == (1, None)
        assert store.find_card("1" * 26) is None  # reads go on too
        assert time.monotonic() - t0 < 1  # (the busy timeout would be 5 s)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_access_db_is_a_separate_file_with_its_integrity(store):
    h = store.add(first_name="Ann", uses=1)
    store.consume_use(h.id)
    db = sqlite3.connect(store.state_dir / "access.db")
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute("SELECT holder_id, taken FROM uses_taken").fetchall() == [(h.id, 1)]
    db.close()


# ---------------------------------------------------------------- property: CSV round trip

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_line_chars = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(',"\t ')
_text_chars = _line_chars | st.just("\n")  # notes may span lines
_holder = st.fixed_dictionaries(
    {
        "first_name": st.text(_line_chars, min_size=1, max_size=20).filter(lambda t: t.strip() and t == t.strip()),
        "last_name": st.text(_line_chars, max_size=20).map(str.strip),
        "notes": st.text(_text_chars, max_size=40),
        "suspended": st.booleans(),
        "uses": st.none() | st.integers(0, 10**6),
        "valid_to": st.none() | st.dates().map(lambda d: d.isoformat()),
        "card": st.none() | st.integers(0, 2**40 - 1).map(lambda v: format(v, "X")),
        "qr": st.none() | st.text(_line_chars, min_size=1, max_size=30).filter(str.strip),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_holder, min_size=1, max_size=8, unique_by=(lambda h: h["first_name"], lambda h: h["card"] or id(h), lambda h: h["qr"] or id(h))))
def test_export_then_import_gives_the_same_holders(tmp_path_factory, holders):
    a = EntryList(tmp_path_factory.mktemp("a"))
    b = EntryList(tmp_path_factory.mktemp("b"))
    try:
        for h in holders:
            fields = {k: v for k, v in h.items() if v is not None and k != "card"}
            if h["card"] is not None:
                fields.update(card=h["card"], bit_length=40)
            if "notes" in fields and fields["notes"].strip() == "":
                fields["notes"] = ""
            a.add(**fields)
        text = rows_to_csv(a.export_rows(limit=100), header=True)
        b.import_csv(io.StringIO(text, newline=""))
        mine, theirs = a.list(limit=100), b.list(limit=100)  # the import keeps the file's order
        assert len(mine) == len(theirs) == len(holders)
        for h, g in zip(mine, theirs, strict=True):
            x, y = a.describe(h), b.describe(g)
            x.pop("id"), y.pop("id")
            assert x == y
    finally:
        a.close()
        b.close()


def test_a_number_names_a_holder_id_first_then_a_first_name(store):
    ann = store.add(first_name="Ann")
    two = store.add(first_name="2")
    one = store.add(first_name="1")
    assert store.get("1") == ann  # id 1
    assert store.get(1) == ann
    assert store.get("2") == two  # id 2 is the holder named "2"
    with pytest.raises(HolderNotFound):
        store.get("9")
    store.remove(ann.id)
    assert store.get("1") == one  # no id 1 any more: the first name
