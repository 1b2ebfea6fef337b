"""``accessd-cli holders …``, ``check-credential``, ``latest`` against a real daemon subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys

from accessd.cli.holders import chunks
from accessd.store.entrylist import CSV_COLUMNS


def js(done) -> dict:
    return json.loads(done.stdout)


def test_add_show_update_remove_round_trip(daemon):
    out = js(daemon.cli("holders", "add", "--first-name", "Ann", "--last-name", "Lee", "--card", "0318601",
                        "--bit-length", "26", "--pin", "482913", "--valid-to", "2099-12-31", "--uses", "3",
                        "--notes", "desk", "--access-time", "15", "--json", check=0))
    assert out["card"]["hex"] == "0318601" and out["pin"] is True and out["uses"] == 3 and out["access_time"] == 15
    assert "482913" not in json.dumps(out)
    human = daemon.cli("holders", "show", "Ann", check=0).stdout
    assert "#1 Ann Lee: card 0318601/26 bits, PIN set; valid … to 2099-12-31, 3 uses left, unlock 15 s" in human
    assert "notes: desk" in human
    out = js(daemon.cli("holders", "update", "Ann", "--suspended", "--uses", "unlimited", "--no-pin", "--json", check=0))
    assert out["suspended"] is True and out["uses"] is None and out["pin"] is False
    out = js(daemon.cli("holders", "update", "1", "--active", "--format", "Wiegand26", "--fc", "12", "--cn", "3456",
                        "--valid-to", "", "--json", check=0))
    assert out["suspended"] is False and out["valid_to"] is None
    assert out["card"] == {"hex": None, "bit_length": None, "format": "H10301", "facility_code": 12, "card_number": 3456}
    assert daemon.cli("holders", "remove", "Ann", check=0).stdout.strip() == "removed #1 Ann Lee"
    done = daemon.cli("holders", "show", "Ann", check=1)
    assert "no holder 'Ann'" in done.stderr


def test_add_errors_exit_2_and_name_the_field(daemon):
    daemon.cli("holders", "add", "--first-name", "Ann", "--qr", "X", check=0)
    done = daemon.cli("holders", "add", "--first-name", "Bob", "--qr", "X", check=2)
    assert "qr: (hidden) is already used by holder 'Ann'" in done.stderr
    done = daemon.cli("holders", "add", "--first-name", "Ann", check=2)
    assert "first_name: 'Ann' is already used" in done.stderr
    done = daemon.cli("holders", "add", "--first-name", "C", "--valid-to", "soon", check=2)
    assert "valid_to: expected an ISO 8601 date or date-time" in done.stderr
    done = daemon.cli("holders", "add", "--first-name", "C", "--card", "AB", check=2)
    assert "--card needs --bit-length" in done.stderr
    done = daemon.cli("holders", "add", "--first-name", "C", "--card", "AB", "--format", "H10301", check=2)
    assert "not allowed with argument" in done.stderr
    done = daemon.cli("holders", "add", "--first-name", "C", "--from-latest", check=1)
    assert "no card has been read" in done.stderr


def test_generate_pin_prints_it_once(daemon):
    done = daemon.cli("holders", "add", "--first-name", "Gen", "--generate-pin", check=0)
    line = [x for x in done.stdout.splitlines() if x.startswith("generated PIN: ")][0]
    pin = line.split()[2]
    assert len(pin) == 6 and pin.isdigit()
    assert daemon.cli("check-credential", "--pin", pin, check=0).stdout.startswith("granted: Gen")


def test_check_credential_exit_codes_dry_run_and_present(daemon):
    daemon.cli("holders", "add", "--first-name", "Erin", "--card", "318601", "--bit-length", "26", "--uses", "1", check=0)
    done = daemon.cli("check-credential", "--card", "318601", "--bit-length", "26", check=0)
    assert done.stdout.strip() == "granted: Erin, 0 uses left  [dry run: nothing changed]"
    out = js(daemon.cli("check-credential", "--card", "318601", "--bit-length", "26", "--present", "--json", check=0))
    assert {k: out[k] for k in ("decision", "reason", "remaining_uses")} == {
        "decision": "granted", "reason": None, "remaining_uses": 0}
    assert out["holder"] == {"id": 1, "first_name": "Erin", "last_name": ""}
    out = js(daemon.cli("check-credential", "--card", "318601", "--bit-length", "26", "--json", check=1))
    assert (out["decision"], out["reason"]) == ("denied", "uses_exhausted")
    done = daemon.cli("check-credential", "--qr", "nobody", check=1)
    assert done.stdout.startswith("denied: unknown_credential (no holder)")
    daemon.cli("check-credential", "--card", "ZZ", "--bit-length", "8", check=2)
    daemon.cli("check-credential", check=2)


def test_check_credential_without_a_daemon_exits_3(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from accessd.cli import main; sys.exit(main())", "--socket",
         str(tmp_path / "none.sock"), "check-credential", "--pin", "1234"],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 3 and "none.sock" in done.stderr


def test_latest_after_a_presentation(daemon):
    daemon.cli("check-credential", "--card", "A1B2C3D4", "--bit-length", "32", "--present", check=1)
    out = js(daemon.cli("latest", "--json", check=0))["latest"]
    assert out[0]["hex"] == "A1B2C3D4" and out[0]["reversed_uid"] == "D4C3B2A1" and out[0]["bit_length"] == 32
    human = daemon.cli("latest", check=0).stdout
    assert "32 bits  hex A1B2C3D4" in human and "reversed D4C3B2A1" in human
    out = js(daemon.cli("holders", "add", "--first-name", "Card", "--from-latest", "--json", check=0))
    assert out["card"]["hex"] == "A1B2C3D4"


def test_import_export_list(daemon, tmp_path):
    src = tmp_path / "in.csv"
    rows = ["first_name,last_name,card,bit_length,pin,uses,notes"]
    rows += [f'N{i},Last {i},{i:X},32,{100000 + i},{i % 5},"multi\nline {i}"' for i in range(3000)]
    src.write_text("\n".join(rows) + "\n")
    out = js(daemon.cli("holders", "import", str(src), "--json", check=0))
    assert out == {"added": 3000, "rows": 3000}
    listed = js(daemon.cli("holders", "list", "--json", check=0))["holders"]
    assert len(listed) == 3000 and listed[-1]["notes"] == "multi\nline 2999"
    assert len(js(daemon.cli("holders", "list", "--limit", "5", "--json", check=0))["holders"]) == 5
    dst = tmp_path / "out.csv"
    assert daemon.cli("holders", "export", str(dst), check=0).stdout.strip() == f"exported 3000 holders to {dst}"
    exported = list(csv.DictReader(io.StringIO(dst.read_text())))
    assert list(exported[0]) == list(CSV_COLUMNS)
    assert exported[2999]["first_name"] == "N2999" and exported[2999]["card"] == "00000BB7"
    assert all(r["pin"] == "" for r in exported)
    stdout = daemon.cli("holders", "export", check=0).stdout
    assert stdout.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert daemon.cli("check-credential", "--card", "BB7", "--bit-length", "32", "--pin", "102999", check=0)


def test_import_errors_name_line_and_field_and_change_nothing(daemon, tmp_path):
    daemon.cli("holders", "add", "--first-name", "Existing", "--qr", "Q1", check=0)
    src = tmp_path / "bad.csv"
    lines = ["first_name,qr,uses"] + [f"N{i},q{i},1" for i in range(2000)]
    lines[1500] = "Bad,Q1,1"  # line 1501: QR of Existing
    lines[1800] = "Worse,,many"  # line 1801: uses
    src.write_text("\n".join(lines) + "\n")
    done = daemon.cli("holders", "import", str(src), check=2)
    assert "line 1501, qr: (hidden) is already used by holder 'Existing'" in done.stderr
    assert "line 1801, uses: expected a whole number" in done.stderr
    assert [h["first_name"] for h in js(daemon.cli("holders", "list", "--json", check=0))["holders"]] == ["Existing"]
    (tmp_path / "empty.csv").write_text("")
    daemon.cli("holders", "import", str(tmp_path / "empty.csv"), check=2)
    done = daemon.cli("holders", "import", str(tmp_path / "missing.csv"), check=2)
    assert "cannot read" in done.stderr


def test_import_progress_bar_only_on_a_terminal(daemon, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("first_name,qr\n" + "".join(f"T{i},Q{i}\n" for i in range(4000)))
    # not a terminal: no progress output at all
    done = daemon.cli("holders", "import", str(src), check=0)
    assert done.stderr == "" and done.stdout.strip() == f"imported 4000 holders from {src}"
    # on a terminal (a real pty as stderr): a progress bar to 100 %
    daemon.cli("holders", "remove", "T0", check=0)
    src.write_text("first_name,qr\n" + "".join(f"U{i},R{i}\n" for i in range(4000)))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from accessd.cli import main; sys.exit(main())", "--socket",
         daemon.socket, "holders", "import", str(src)],
        stdout=subprocess.PIPE, stderr=slave, text=True,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    assert proc.wait(60) == 0
    os.close(master)
    text = seen.decode()
    assert "importing [" in text and "100%" in text and "committing" in text


def test_chunks_cut_only_between_records():
    text = 'first_name,notes\n' + "".join(f'N{i},"a\nb ""{i}"""\n' for i in range(500))
    pieces = list(chunks(io.StringIO(text, newline=""), budget=200))
    assert len(pieces) > 10
    assert "".join(t for _, t in pieces) == text
    for first, piece in pieces:
        assert piece.count('"') % 2 == 0
        # the first line number is where the piece starts in the file
        assert text.splitlines(keepends=True)[first - 1] == piece.splitlines(keepends=True)[0]


def test_import_checks_format_names_against_the_daemons_library(daemon_factory, tmp_path):
    d = daemon_factory('[[formats]]\nname = "Site30"\nbit_length = 30\nfc_position = 1\nfc_size = 12\n'
                       'cn_position = 13\ncn_size = 16\n')
    src = tmp_path / "in.csv"
    src.write_text("first_name,format,facility_code,card_number\nKay,Kastle,12,3456\nSy,site30,1,2\n")
    assert js(d.cli("holders", "import", str(src), "--json", check=0)) == {"added": 2, "rows": 2}
    assert js(d.cli("holders", "show", "Kay", "--json", check=0))["card"]["format"] == "Kastle32"
    assert js(d.cli("holders", "show", "Sy", "--json", check=0))["card"]["format"] == "Site30"
    src.write_text("first_name,format,facility_code,card_number\nNn,NoSuchFormat,1,2\n")
    done = d.cli("holders", "import", str(src), check=2)
    assert "line 2, format: expected a card format name, one of H10301," in done.stderr
    assert "Site30" in done.stderr
    done = d.cli("holders", "add", "--first-name", "Nn", "--format", "NoSuchFormat", "--cn", "2", check=2)
    assert "NoSuchFormat" in done.stderr and "Kastle32" in done.stderr


def test_no_qr_text_in_any_state_file_after_adding_importing_and_presenting(daemon, tmp_path):
    added, imported = "QR-SECRET-5d1e9b", "QR-SECRET-77aa01"
    out = js(daemon.cli("holders", "add", "--first-name", "Quinn", "--qr", added, "--json", check=0))
    assert out["qr"] is True
    src = tmp_path / "in.csv"
    src.write_text(f"first_name,qr\nRex,{imported}\n")
    daemon.cli("holders", "import", str(src), check=0)
    for text, name in ((added, "Quinn"), (imported, "Rex")):
        out = js(daemon.cli("check-credential", "--qr", text, "--present", "--json", check=0))
        assert (out["decision"], out["holder"]["first_name"]) == ("granted", name)
    daemon.cli("check-credential", "--qr", "QR-SECRET-unknown", "--present", check=1)
    assert daemon.cli("holders", "show", "Quinn", check=0).stdout.strip() == "#1 Quinn: QR set"
    for shown in (daemon.cli("holders", "export", check=0).stdout, daemon.cli("events", "--json", check=0).stdout,
                  daemon.cli("holders", "list", "--json", check=0).stdout):
        assert "QR-SECRET" not in shown
    assert daemon.stop() == 0
    holding = [p for p in sorted(daemon.state_dir.rglob("*")) if p.is_file() and b"QR-SECRET" in p.read_bytes()]
    assert holding == []


def test_a_failed_import_ends_its_session_at_once(daemon, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("first_name,pin\nArabic,١٢٣٤\n", encoding="utf-8")
    done = daemon.cli("holders", "import", str(bad), check=2)
    assert "line 2, pin: expected 4 to 16 decimal digits" in done.stderr
    good = tmp_path / "good.csv"
    good.write_text("first_name,pin\nLatin,1234\n")
    assert daemon.cli("holders", "import", str(good), check=0).stdout.startswith("imported 1 holders")
    # a session whose chunk fails in any other way is dropped as well
    first = daemon.request("holders.import", text="first_name\nA\n")
    session = first["result"]["session"]
    refused = daemon.request("holders.import", session=session, text=["not", "text"])
    assert not refused["ok"]
    assert daemon.request("holders.import", session=session, commit=True)["error"]["kind"] == "not_found"
    good.write_text("first_name,pin\nGreek,5678\n")
    assert daemon.cli("holders", "import", str(good), check=0).stdout.startswith("imported 1 holders")


def test_a_binary_csv_is_a_clean_error(daemon, tmp_path):
    src = tmp_path / "photo.csv"
    src.write_bytes(b"first_name\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00")
    done = daemon.cli("holders", "import", str(src), check=2)
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith(f"accessd-cli: holders import: {src} is not UTF-8 text")
    src.write_text("first_name\nNext\n")  # the next import is not blocked
    assert daemon.cli("holders", "import", str(src), check=0).stdout.startswith("imported 1 holders")


def test_exports_neutralise_formula_cells_and_an_import_reads_them_back(daemon, tmp_path):
    daemon.cli("holders", "add", "--first-name", "=HYPERLINK(\"http://x\")", "--last-name", "+1", "--notes", "@SUM(A1)",
               "--card", "1", "--bit-length", "26", check=0)
    daemon.cli("check-credential", "--card", "1", "--bit-length", "26", "--present", check=0)
    dst = tmp_path / "out.csv"
    daemon.cli("holders", "export", str(dst), check=0)
    row = list(csv.DictReader(io.StringIO(dst.read_text(), newline="")))[0]
    assert (row["first_name"], row["last_name"], row["notes"]) == ("'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)")
    daemon.cli("holders", "remove", "1", check=0)
    daemon.cli("holders", "import", str(dst), check=0)
    back = js(daemon.cli("holders", "show", "=HYPERLINK(\"http://x\")", "--json", check=0))
    assert (back["last_name"], back["notes"]) == ("+1", "@SUM(A1)")
    events = list(csv.reader(io.StringIO(daemon.cli("events", "--csv", "--type", "access.granted", check=0).stdout,
                                         newline="")))
    assert events and all(not cell or cell[0] not in "=+-@\t\r" for e in events for cell in e)
    assert any(cell.startswith("'=HYPERLINK(") for e in events for cell in e)


def test_qr_generate_writes_an_image_that_decodes_to_the_granted_text(daemon, tmp_path):
    import zxingcpp
    from PIL import Image

    image = tmp_path / "rita.png"
    out = js(daemon.cli("holders", "add", "--first-name", "Rita", "--qr-generate", "--qr-image", str(image), "--json",
                        check=0))
    text = out["generated_qr"]
    assert text.startswith("AQ1-") and out["qr_image"] == str(image)
    assert os.stat(image).st_mode & 0o777 == 0o600
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(image))] == [text]
    assert text not in json.dumps(js(daemon.cli("holders", "show", "Rita", "--json", check=0)))
    granted = js(daemon.cli("check-credential", "--qr", text, "--json", check=0))
    assert granted["decision"] == "granted" and granted["holder"]["first_name"] == "Rita"


def test_qr_image_with_a_bad_suffix_is_refused_before_any_holder_is_added(daemon, tmp_path):
    done = daemon.cli("holders", "add", "--first-name", "Sam", "--qr-generate", "--qr-image", str(tmp_path / "sam.jpg"),
                      check=2)
    assert "sam.jpg" in done.stderr
    assert daemon.result("holders.list")["holders"] == []
    assert not (tmp_path / "sam.jpg").exists()
