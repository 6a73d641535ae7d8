"""Signed critic trailer (header under the MAC), key files, and the safe critic file reader."""
from __future__ import annotations

import os
import stat
import struct
import threading
import time

import pytest

from dmpc_core.critics import source
from dmpc_core.critics.bundle import CriticBundleError
from dmpc_core.critics.signing import (MAGIC, CriticHeader, CriticSignatureError, KeyFileError, ensure_key_file,
                                       generate_key_file, mac, read_key, sign_bundle, verify)
from dmpc_core.critics.source import CriticSourceError, read_critic_source

KEY = b"0123456789abcdef-key"
DATA = b"\x08\x07onnx-bytes-stand-in" * 20
HDR = CriticHeader("/dmpc_learner", 7, "ballbot", "reach")


def test_round_trip_returns_bytes_and_authenticated_header():
    v = verify(sign_bundle(DATA, KEY, HDR), KEY)
    assert v.data == DATA and v.header == HDR and v.signed


@pytest.mark.parametrize("field,value", [("version", 8), ("robot", "panda"), ("task", "walls"), ("learner", "/mallory")])
def test_mac_covers_every_header_field(field, value):
    """Rewriting one header field (same length or not) with the tag kept fails verification."""
    blob = sign_bundle(DATA, KEY, HDR)
    forged_header = CriticHeader(**{**HDR.__dict__, field: value}).encode()
    tail = blob[-(len(MAGIC) + 32):]
    forged = DATA + forged_header + struct.pack(">I", len(forged_header)) + tail
    with pytest.raises(CriticSignatureError, match="does not verify"):
        verify(forged, KEY)


def test_mac_covers_bytes_and_binds_the_split():
    blob = bytearray(sign_bundle(DATA, KEY, HDR))
    blob[5] ^= 1
    with pytest.raises(CriticSignatureError, match="does not verify"):
        verify(bytes(blob), KEY)
    # moving one byte from the ONNX part into the header (LEN + 1) keeps the concatenation but fails
    raw = HDR.encode()
    tag = mac(MAGIC + struct.pack(">I", len(raw)) + raw + DATA, KEY)
    shifted = DATA + raw + struct.pack(">I", len(raw) + 1) + MAGIC + tag
    with pytest.raises(CriticSignatureError):
        verify(shifted, KEY)
    with pytest.raises(CriticSignatureError, match="does not verify"):
        verify(sign_bundle(DATA, b"another key of 16+ bytes", HDR), KEY)


def test_unsigned_and_unverifiable_critics_need_allow_unsigned():
    with pytest.raises(CriticSignatureError, match="unsigned"):
        verify(DATA, KEY)
    with pytest.raises(CriticSignatureError, match="unsigned"):
        verify(DATA, None)
    with pytest.raises(CriticSignatureError, match="no key"):
        verify(sign_bundle(DATA, KEY, HDR), None)
    assert verify(DATA, None, allow_unsigned=True) == verify(DATA, KEY, allow_unsigned=True)
    assert not verify(DATA, None, allow_unsigned=True).signed
    v = verify(sign_bundle(DATA, KEY, HDR), None, allow_unsigned=True)  # cannot check: counts as unsigned
    assert v.data == DATA and v.header is None


def test_old_trailer_and_garbage_trailers_are_signature_errors():
    old = DATA + b"DMPCSIG1" + mac(DATA, KEY)
    with pytest.raises(CriticSignatureError, match="DMPCSIG1"):
        verify(old, KEY, allow_unsigned=True)
    for hlen in (2**32 - 1, len(DATA) + 10_000, 1025):
        blob = DATA + struct.pack(">I", hlen) + MAGIC + b"\0" * 32
        with pytest.raises(CriticSignatureError, match="header length"):
            verify(blob, KEY)
    for bad_header in (b"\xff\xfe", b"[1, 2]", b'{"learner": "a"}', b'{"learner":"","robot":"b","task":"c","version":1}',
                       b'{"learner":"a","robot":"b","task":"c","version":true}',
                       b'{"learner":"a","robot":"b","task":"c","version":-1}'):
        tag = mac(MAGIC + struct.pack(">I", len(bad_header)) + bad_header + DATA, KEY)
        blob = DATA + bad_header + struct.pack(">I", len(bad_header)) + MAGIC + tag
        with pytest.raises(CriticSignatureError, match="header"):
            verify(blob, KEY)
    with pytest.raises(CriticSignatureError, match="bytes"):
        verify("a string", KEY)


def test_key_file_is_generated_private_and_read_back(tmp_path):
    path = tmp_path / "keys" / "critic.key"
    key = ensure_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(key) == 64
    assert read_key(path) == key == ensure_key_file(path)       # reused, not regenerated
    with pytest.raises(FileExistsError):
        generate_key_file(path)
    other = generate_key_file(tmp_path / "k2")
    assert other != key


def test_read_key_refuses_unsafe_files(tmp_path):
    loose = tmp_path / "loose.key"
    loose.write_bytes(KEY)
    os.chmod(loose, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key(loose)
    short = tmp_path / "short.key"
    short.write_bytes(b"  short \n")
    os.chmod(short, 0o600)
    with pytest.raises(KeyFileError, match="at least 16"):
        read_key(short)
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError, match="regular"):
        read_key(fifo)                                              # returns at once, never blocks
    with pytest.raises(KeyFileError, match="cannot read key file .*missing.key: No such file"):
        read_key(tmp_path / "missing.key")
    big = tmp_path / "big.key"
    big.write_bytes(b"k" * 5000)
    os.chmod(big, 0o600)
    with pytest.raises(KeyFileError, match="5000 bytes, above the limit of 4096"):
        read_key(big)


# -- critic sources ------------------------------------------------------------------------------
def test_reads_regular_files_paths_and_file_uris(tmp_path):
    f = tmp_path / "critic v1.onnx"
    f.write_bytes(DATA)
    link = tmp_path / "latest.onnx"
    link.symlink_to(f)
    assert read_critic_source(str(f)) == DATA == read_critic_source(f)
    assert read_critic_source("file://" + str(f).replace(" ", "%20")) == DATA
    assert read_critic_source(str(link)) == DATA


@pytest.mark.parametrize("make,why", [
    (lambda d: (os.mkfifo(d / "p"), d / "p")[1], "FIFO"),
    (lambda d: (os.symlink("/dev/zero", d / "z"), d / "z")[1], "character device"),
    (lambda d: d, "directory"),
    (lambda d: d / "missing.onnx", "No such file"),
])
def test_refuses_non_regular_sources_at_once(tmp_path, make, why):
    target = make(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(CriticSourceError, match=why):
        read_critic_source(str(target), timeout=5.0)
    assert time.monotonic() - t0 < 4.0  # refused, not timed out


def test_fifo_behind_a_symlink_is_refused(tmp_path):
    os.mkfifo(tmp_path / "p")
    (tmp_path / "critic.onnx").symlink_to(tmp_path / "p")
    with pytest.raises(CriticSourceError, match="FIFO"):
        read_critic_source(str(tmp_path / "critic.onnx"))


def test_size_cap_and_schemes(tmp_path):
    f = tmp_path / "big.onnx"
    f.write_bytes(b"x" * 1001)
    with pytest.raises(CriticSourceError, match="1001 bytes, above the limit of 1000"):
        read_critic_source(str(f), max_bytes=1000)
    assert len(read_critic_source(str(f), max_bytes=1001)) == 1001
    for uri, why in (("http://host/critic.onnx", "scheme"), ("file://host/tmp/c.onnx", "host"), ("", "empty"),
                     ("a\x00b", "NUL")):
        with pytest.raises(CriticSourceError, match=why):
            read_critic_source(uri)
    with pytest.raises(CriticSourceError, match="string"):
        read_critic_source(3)
    assert issubclass(CriticSourceError, CriticBundleError)


def test_bounded_wait_and_bounded_stuck_readers(tmp_path, monkeypatch):
    """A read that never returns (e.g. a hung network mount) costs the caller ``timeout``, and
    at most MAX_STUCK_READERS helper threads stay stuck: later calls fail at once."""
    release = threading.Event()

    def hang(path, max_bytes):
        release.wait(30)
        return b""

    monkeypatch.setattr(source, "_read_regular", hang)
    try:
        for _ in range(source.MAX_STUCK_READERS):
            t0 = time.monotonic()
            with pytest.raises(CriticSourceError, match="longer than 0.2 s"):
                read_critic_source(str(tmp_path / "c.onnx"), timeout=0.2)
            assert time.monotonic() - t0 < 2.0
        t0 = time.monotonic()
        with pytest.raises(CriticSourceError, match="still blocked"):
            read_critic_source(str(tmp_path / "c.onnx"), timeout=5.0)
        assert time.monotonic() - t0 < 1.0
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the helpers finish and give their slots back
        try:
            monkeypatch.setattr(source, "_read_regular", lambda p, m: b"ok")
            assert read_critic_source("x", timeout=1.0) == b"ok"
            break
        except CriticSourceError:
            time.sleep(0.05)
    else:
        pytest.fail("stuck reader slots were not released")


def test_load_bundle_reads_paths_through_the_safe_reader(tmp_path):
    from dmpc_core.critics.bundle import load_bundle

    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * 2048)
    with pytest.raises(CriticBundleError, match="above the limit of 1024"):
        load_bundle(big, max_bytes=1024)
    os.mkfifo(tmp_path / "p.onnx")
    with pytest.raises(CriticBundleError, match="FIFO"):
        load_bundle(tmp_path / "p.onnx")
