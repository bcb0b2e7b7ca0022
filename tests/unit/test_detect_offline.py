"""Detection makes no network call: in a fresh process with every socket connect refused,
the scanner and a Presidio analyzer (whose email recognizer uses tldextract) both work."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_detection_works_with_networking_blocked(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import socket

        attempts = []

        def refuse(self, address, *args, **kwargs):
            attempts.append(address)
            raise OSError("network blocked by test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = lambda *a, **k: refuse(None, a)
        socket.getaddrinfo = lambda host, *a, **k: refuse(None, host)

        from veilflow.detect.presidio import build_analyzer
        from veilflow.detect.scanner import Scanner
        from veilflow.policy.detection import DetectionSettings

        text = "Write to jane.doe@example.co.uk or call +44 20 7946 0958, Jane Doe."
        spans = Scanner().scan_text(text)
        assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"} <= {s.entity for s in spans}, spans
        analyzer = build_analyzer(DetectionSettings())
        results = analyzer.analyze(text, language="en")
        assert any(r.entity_type == "EMAIL_ADDRESS" for r in results), results
        import tldextract
        assert tldextract.extract("a.b.example.co.uk").suffix == "co.uk"
        assert attempts == [], attempts
        print("OFFLINE-OK")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    # A cold tldextract cache: without the offline setup this process would have tried to
    # resolve publicsuffix.org (a getaddrinfo attempt the test records and refuses).
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OFFLINE-OK" in proc.stdout
