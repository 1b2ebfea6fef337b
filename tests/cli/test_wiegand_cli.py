"""accessd-cli wiegand decode|encode|formats and keypress encode|decode: no daemon needed."""

import json

import pytest

from accessd.cli import main

H26 = "00101101000000001010001000"  # H10301 FC 90 CN 324 (github.com/jessety/wiegand-encoder README)


def run(capsys, *argv):
    code = main(["--socket", "/nonexistent/accessd.sock", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_decode_json_fields(capsys):
    code, out, _ = run(capsys, "wiegand", "decode", H26, "--json")
    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("bit_length", "bits", "format", "facility_code", "card_number", "parity_ok")} == {
        "bit_length": 26, "bits": H26, "format": "H10301", "facility_code": 90, "card_number": 324, "parity_ok": True}
    assert [m["format"] for m in data["matches"]] == ["H10301", "ind26"]
    assert all({"format", "facility_code", "card_number", "parity_ok"} <= set(m) for m in data["matches"])


def test_decode_hex_and_pinned_format_and_human_text(capsys):
    code, out, _ = run(capsys, "wiegand", "decode", "--hex", "0B40288", "--bit-length", "26", "--format", "ind26")
    assert code == 0 and "format ind26: facility code 1440, card number 324, parity ok" in out


def test_decode_failures_exit_1_and_bad_input_exit_2(capsys):
    bad = H26[:3] + ("1" if H26[3] == "0" else "0") + H26[4:]
    code, out, _ = run(capsys, "wiegand", "decode", bad, "--json")
    assert code == 1 and json.loads(out)["parity_ok"] is False and json.loads(out)["format"] is None
    code, out, _ = run(capsys, "wiegand", "decode", "1" * 37)
    assert code == 1 and "not decoded:" in out
    code, _, err = run(capsys, "wiegand", "decode", "01x1")
    assert code == 2 and "wiegand decode: expected a string of 0 and 1" in err
    code, _, err = run(capsys, "wiegand", "decode", "--hex", "FFFF", "--bit-length", "8")
    assert code == 2 and "does not fit in 8 bits" in err
    code, _, err = run(capsys, "wiegand", "decode")
    assert code == 2


def test_decode_swapped(capsys):
    code, out, _ = run(capsys, "wiegand", "decode", H26.translate(str.maketrans("01", "10")), "--json")
    data = json.loads(out)
    assert code == 1 and data["swapped"] is True and data["card_number"] == 324


def test_encode_json_and_limits(capsys):
    code, out, _ = run(capsys, "wiegand", "encode", "--format", "Wiegand26", "--fc", "90", "--cn", "324", "--json")
    assert code == 0 and json.loads(out) == {"format": "H10301", "bit_length": 26, "bits": H26, "hex": "0B40288"}
    code, _, err = run(capsys, "wiegand", "encode", "--format", "H10301", "--fc", "256", "--cn", "1")
    assert code == 2 and "facility code 256 is out of range for H10301 (0–255)" in err
    code, _, err = run(capsys, "wiegand", "encode", "--format", "H12345", "--cn", "1")
    assert code == 2 and "unknown Wiegand format 'H12345'" in err


def test_formats_list(capsys):
    code, out, _ = run(capsys, "wiegand", "formats", "--json")
    names = [f["name"] for f in json.loads(out)["formats"]]
    assert code == 0 and {"H10301", "H10306", "H10302", "H10304", "C1k35s", "C1k48s", "Raw"} <= set(names)
    code, out, _ = run(capsys, "wiegand", "formats")
    assert "Wiegand37FacilityCode" in out


def test_custom_formats_from_config(capsys, tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text('[[formats]]\nname = "Site30"\nbit_length = 30\nfc_position = 1\nfc_size = 12\n'
                   'cn_position = 13\ncn_size = 16\nstart_parity = "Even"\nstop_parity = "Odd"\n')
    code, out, _ = run(capsys, "wiegand", "encode", "--config", str(cfg), "--format", "site30", "--fc", "7",
                       "--cn", "9", "--json")
    bits = json.loads(out)["bits"]
    code, out, _ = run(capsys, "wiegand", "decode", bits, "--config", str(cfg), "--preference", "Site30", "--json")
    assert code == 0 and json.loads(out)["format"] == "Site30" and json.loads(out)["facility_code"] == 7
    bad = tmp_path / "b.toml"
    bad.write_text('[[formats]]\nname = "X"\nbit_length = 10\ncn_size = 20\n')
    code, _, err = run(capsys, "wiegand", "formats", "--config", str(bad))
    assert code == 2 and "formats[0]" in err


@pytest.mark.parametrize("fmt, digits, hexes", [
    ("FourBit", "1234", ["1", "2", "3", "4"]),
    ("EightBitZeroPadded", "1234", ["01", "02", "03", "04"]),
    ("EightBitInvertPadded", "1234", ["E1", "D2", "C3", "B4"]),
    ("EightBitInvertPadded", "*#", ["5A", "4B"]),
])
def test_keypress_encode_decode(capsys, fmt, digits, hexes):
    code, out, _ = run(capsys, "keypress", "encode", "--format", fmt, digits, "--json")
    data = json.loads(out)
    assert code == 0 and data["format"] == fmt
    assert [f["hex"] for f in data["frames"]] == hexes
    assert all(set(f) == {"bit_length", "bits", "hex"} for f in data["frames"])
    code, out, _ = run(capsys, "keypress", "decode", "--format", fmt, *hexes, "--json")
    assert code == 0 and json.loads(out) == {"format": fmt, "keys": digits, "errors": []}


def test_keypress_buffered_pin_and_errors(capsys):
    code, out, _ = run(capsys, "keypress", "encode", "--format", "Wiegand26", "--fc", "5", "1234", "--json")
    (frame,) = json.loads(out)["frames"]
    assert frame["bit_length"] == 26
    code, out, _ = run(capsys, "keypress", "decode", "--format", "Wiegand26", "--fc", "5", frame["hex"], "--json")
    assert json.loads(out)["keys"] == "1234#"
    code, out, _ = run(capsys, "keypress", "decode", "--format", "EightBitInvertPadded", "E1", "F3", "--json")
    data = json.loads(out)
    assert code == 1 and data["keys"] == "1" and "not the inverse" in data["errors"][0]
    code, _, err = run(capsys, "keypress", "encode", "--format", "FourBit", "--key-map", "*=Z", "1")
    assert code == 2 and "--key-map" in err


def test_keypress_decode_accepts_run_together_hex(capsys):
    code, out, _ = run(capsys, "keypress", "decode", "--format", "EightBitInvertPadded", "E1D2C3B4", "--json")
    assert code == 0 and json.loads(out)["keys"] == "1234"
    code, out, _ = run(capsys, "keypress", "decode", "--format", "FourBit", "0x123B", "--json")
    assert code == 0 and json.loads(out)["keys"] == "123#"
