"""ssm/install-certificate.sh run for real with bash in a sandbox.

Certificates come from `cryptography` (a CA, leaves with SANs, keys exported as encrypted
PKCS#8 like ACM's ExportCertificate). The "service" is tests/functional/tls_listener.py: it
serves the installed files and rereads them only when the Reload command touches its flag file.
Most tests use the script: adapter: Reload and ConfigTest name small sh scripts in the sandbox
(a directory the sandbox's hook-dirs file lists) whose exit codes, and whether they signal the
listener, each test chooses. The named adapters (nginx, apache, ...) run against stand-ins for
nginx, apachectl and systemctl put first on PATH, which log the argument vectors they get.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certrelay.ssm_document import validate_parameters
from tests.functional.tls_listener import TlsListener, served_fingerprint

SCRIPT = Path(__file__).resolve().parents[2] / "ssm" / "install-certificate.sh"
PASSPHRASE = "Zq7-tR2kLm9pXw4vNc8bHy3jFd6sGa5e"  # 32 characters, no '#$%' (like Secrets Manager)
NAME = "api.internal.example.com"
VERIFY_TIMEOUT = "3"
RUN_TIMEOUT = 60

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("bash") is None,
    reason="needs openssl and bash",
)

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    key: Key
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.cert.public_bytes(serialization.Encoding.DER)).hexdigest()

    def plain_key(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def encrypted_key(self, passphrase: str = PASSPHRASE) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )


def _new_key(kind: str = "ec") -> Key:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: str, issuer: x509.Name, key: Key, valid_for: timedelta = timedelta(days=30)
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + valid_for)
    )


def make_ca(name: str = "Test Root CA", issuer: Issued | None = None) -> Issued:
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        _builder(name, issuer.cert.subject if issuer else subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    signer = issuer.key if issuer else key
    return Issued(key, builder.sign(signer, hashes.SHA256()))


def make_leaf(
    ca: Issued,
    names: tuple[str, ...] = (NAME,),
    kind: str = "ec",
    valid_for: timedelta = timedelta(days=30),
) -> Issued:
    key = _new_key(kind)
    builder = (
        _builder(names[0], ca.cert.subject, key, valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    )
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca()


# --- the sandbox ------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def status(self) -> str:
        return self.stdout.rstrip("\n")


@dataclass
class Sandbox:
    root: Path
    work: Path = field(init=False)
    etc: Path = field(init=False)
    tmp: Path = field(init=False)
    bin: Path = field(init=False)
    tools: Path = field(init=False)
    reload_flag: Path = field(init=False)
    hook_dirs: Path = field(init=False)

    def __post_init__(self) -> None:
        self.work = self.root / "work"
        self.etc = self.root / "etc" / "ssl"
        self.tmp = self.root / "tmp"
        self.bin = self.root / "hooks"
        self.tools = self.root / "tools"  # stand-ins for nginx, systemctl, ... first on PATH
        self.reload_flag = self.root / "reload-flag"
        for directory in (self.work, self.etc, self.tmp, self.bin, self.tools):
            directory.mkdir(parents=True)
            directory.chmod(0o755)
        self.work.chmod(0o700)
        self.hook_dirs = self.root / "hook-dirs"  # the host's /etc/certrelay/hook-dirs
        self.hook_dirs.write_text(f"{self.bin}\n")
        self.hook_dirs.chmod(0o644)
        self.command("reload", codes=[0])  # the listener fixture makes it signal

    @property
    def cert_path(self) -> Path:
        return self.etc / "site.crt"

    @property
    def key_path(self) -> Path:
        return self.etc / "site.key"

    @property
    def chain_path(self) -> Path:
        return self.etc / "site.chain.pem"

    @property
    def targets(self) -> tuple[Path, Path, Path]:
        return (self.cert_path, self.key_path, self.chain_path)

    def install_current(self, leaf: Issued, chain: bytes) -> None:
        """What the host runs today (written the way an operator would)."""
        self.cert_path.write_bytes(leaf.pem)
        self.key_path.write_bytes(leaf.plain_key())
        self.key_path.chmod(0o600)
        self.chain_path.write_bytes(chain)

    def fetch(
        self,
        leaf: Issued,
        chain: bytes,
        key: bytes | None = None,
        passphrase: str = PASSPHRASE,
    ) -> None:
        """What the earlier document step leaves in WorkDir."""
        (self.work / "cert.pem").write_bytes(leaf.pem)
        (self.work / "chain.pem").write_bytes(chain)
        (self.work / "privkey.pem").write_bytes(
            key if key is not None else leaf.encrypted_key(passphrase)
        )
        secret = self.work / "passphrase"
        secret.write_text(passphrase)
        secret.chmod(0o600)

    def command(self, name: str, codes: list[int], signal: str = "never") -> str:
        """A stand-in for `systemctl reload` / `nginx -t`: exits with codes[n] on call n
        (0 after the list), logs each call; `signal` says when it tells the listener to
        reread its files: "on-success", "always" (a reload that applies and still fails),
        "async" (without waiting for the service) or "never" (a service that ignores it)."""
        log = self.root / f"{name}.log"
        lines = "\n".join(str(code) for code in codes)
        (self.root / f"{name}.codes").write_text(lines + "\n")
        # Like `systemctl reload`, return once the service has taken the signal (bounded).
        flag = self.reload_flag
        wait = f'i=0; while [ -e "{flag}" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done'
        touch = {
            "never": "",
            "always": f'touch "{self.reload_flag}"; {wait}',
            "on-success": f'if [ "$code" = 0 ]; then touch "{self.reload_flag}"; {wait}; fi',
            "async": f'touch "{self.reload_flag}"',  # returns before the service has reloaded
        }[signal]
        script = self.bin / name
        script.write_text(
            "#!/bin/sh\n"
            f'echo called >> "{log}"\n'
            f'n=$(wc -l < "{log}")\n'
            f'code=$(sed -n "${{n}}p" "{self.root / (name + ".codes")}")\n'
            "code=${code:-0}\n"
            f"{touch}\n"
            'exit "$code"\n'
        )
        script.chmod(0o755)
        return f"script:{script}"

    def tool(self, name: str, script: str = "exit 0") -> None:
        """A stand-in for a host program (nginx, systemctl, ...) that logs its arguments."""
        log = self.root / "tools.log"
        path = self.tools / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{script}\n')
        path.chmod(0o755)

    def tool_calls(self) -> list[str]:
        log = self.root / "tools.log"
        return log.read_text().splitlines() if log.exists() else []

    def calls(self, name: str) -> int:
        log = self.root / f"{name}.log"
        return len(log.read_text().splitlines()) if log.exists() else 0

    def parameters(self, expected: Issued, **overrides: str) -> dict[str, str]:
        params = {
            "WorkDir": str(self.work),
            "ExpectedFingerprint": expected.fingerprint,
            "ExpectedName": NAME,
            "CertPath": str(self.cert_path),
            "KeyPath": str(self.key_path),
            "ChainPath": str(self.chain_path),
            "Reload": f"script:{self.bin / 'reload'}",
            "VerifyTimeout": VERIFY_TIMEOUT,
        }
        params.update(overrides)
        return params

    def run(
        self,
        params: dict[str, str],
        *,
        validate: bool = True,
        shell: str = "bash",
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        if validate:
            validate_parameters(params)  # the same gate SSM applies through allowedPattern
        env = {
            "PATH": f"{self.tools}:{os.environ['PATH']}",
            "TMPDIR": str(self.tmp),
            "HOME": str(self.root),
            "CERTRELAY_HOOK_DIRS_FILE": str(self.hook_dirs),
        }
        env.update(extra_env or {})
        env.update({f"SSM_{name}": value for name, value in params.items()})
        started = time.monotonic()
        done = subprocess.run(
            [shell, str(SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.check_hygiene(run)
        return run

    def check_hygiene(self, run: Run) -> None:
        output = run.stdout + run.stderr
        assert PASSPHRASE not in output
        assert "PRIVATE KEY" not in output
        assert "BEGIN" not in output
        assert len(run.stdout.splitlines()) == 1, run.stdout  # exactly one status line
        assert list(self.tmp.iterdir()) == [], "the decrypted key's directory was left behind"
        assert not list(self.etc.glob(".certrelay.*")), "a staged temporary file was left behind"

    def snapshot(self) -> dict[Path, tuple[bytes, int, int]]:
        return {
            path: (path.read_bytes(), path.stat().st_mtime_ns, stat.S_IMODE(path.stat().st_mode))
            for path in sorted(self.etc.iterdir())
        }


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


@pytest.fixture
def current(sandbox: Sandbox, ca: Issued) -> Issued:
    """The certificate the host serves before the run."""
    leaf = make_leaf(ca)
    sandbox.install_current(leaf, ca.pem)
    return leaf


@pytest.fixture
def listener(sandbox: Sandbox, current: Issued) -> Iterator[TlsListener]:
    sandbox.command("reload", codes=[0], signal="on-success")
    with TlsListener(sandbox.cert_path, sandbox.key_path, sandbox.reload_flag) as service:
        assert served_fingerprint(service.port) == current.fingerprint
        yield service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def public_key_of(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_der(issued: Issued) -> bytes:
    return issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- success ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_happy_path_installs_reloads_and_verifies_the_served_certificate(
    sandbox: Sandbox, ca: Issued, current: Issued, listener: TlsListener, kind: str
) -> None:
    new = make_leaf(ca, kind=kind)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()
    old_key = sandbox.key_path.stat()
    # a second name for the old key's inode, outside the targets' directory: it keeps the inode
    # alive (so its number cannot be reused) and shows whether the install wrote into it
    old_key_link = sandbox.root / "old-key-inode"
    os.link(sandbox.key_path, old_key_link)

    run = sandbox.run(sandbox.parameters(new, VerifyPort=str(listener.port)))

    assert (run.returncode, run.status) == (0, f"INSTALLED {new.fingerprint} {sandbox.cert_path}")
    # the key was renamed into place: a new inode under the name, the old inode left as it was
    new_key = sandbox.key_path.stat()
    assert new_key.st_ino != old_key.st_ino
    assert old_key_link.read_bytes() == before[sandbox.key_path][0] == current.plain_key()
    assert old_key_link.stat().st_ino == old_key.st_ino
    key_backup = sandbox.key_path.with_name(sandbox.key_path.name + ".bak")
    assert key_backup.stat().st_ino != new_key.st_ino
    assert (new_key.st_uid, key_backup.stat().st_uid) == (old_key.st_uid, old_key.st_uid)
    assert stat.S_IMODE(new_key.st_mode) == 0o600
    assert sandbox.cert_path.read_bytes() == new.pem
    assert sandbox.chain_path.read_bytes() == ca.pem
    assert public_key_of(sandbox.key_path.read_bytes()) == public_key_der(new)
    assert b"ENCRYPTED" not in sandbox.key_path.read_bytes()
    assert (mode(sandbox.key_path), mode(sandbox.cert_path), mode(sandbox.chain_path)) == (
        0o600,
        0o644,
        0o644,
    )
    for path in sandbox.targets:  # the previous files are kept, content and mode
        backup = path.with_name(path.name + ".bak")
        assert backup.read_bytes() == before[path][0]
        assert mode(backup) == before[path][2]
    assert served_fingerprint(listener.port) == new.fingerprint
    assert (sandbox.calls("reload"), listener.loaded) == (1, [new.fingerprint])


def test_a_service_that_reloads_in_the_background_is_polled_until_it_serves_the_new_one(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    sandbox.command("reload", codes=[0], signal="async")
    flag = sandbox.reload_flag
    with TlsListener(sandbox.cert_path, sandbox.key_path, flag, reload_delay=1.5) as service:
        run = sandbox.run(sandbox.parameters(new, VerifyPort=str(service.port)))

        assert (run.returncode, run.status) == (
            0,
            f"INSTALLED {new.fingerprint} {sandbox.cert_path}",
        )
        assert run.seconds >= 1.5
        assert service.loaded == [new.fingerprint]


def test_first_install_writes_the_files_and_makes_no_backup(sandbox: Sandbox, ca: Issued) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    config_test = sandbox.command("configtest", codes=[0, 0])

    run = sandbox.run(sandbox.parameters(new, ConfigTest=config_test))

    assert (run.returncode, run.status) == (0, f"INSTALLED {new.fingerprint} {sandbox.cert_path}")
    assert sorted(p.name for p in sandbox.etc.iterdir()) == [
        "site.chain.pem",
        "site.crt",
        "site.key",
    ]
    assert (sandbox.calls("configtest"), sandbox.calls("reload")) == (2, 1)


def test_a_chain_with_an_intermediate_verifies(sandbox: Sandbox, ca: Issued) -> None:
    intermediate = make_ca("Test Issuing CA", issuer=ca)
    new = make_leaf(intermediate)
    sandbox.fetch(new, intermediate.pem + ca.pem)

    run = sandbox.run(sandbox.parameters(new))

    assert run.returncode == 0, run.status


def test_a_wildcard_certificate_covers_one_label(sandbox: Sandbox, ca: Issued) -> None:
    new = make_leaf(ca, names=("*.internal.example.com",))
    sandbox.fetch(new, ca.pem)

    run = sandbox.run(sandbox.parameters(new, ExpectedName="API.internal.example.com"))

    assert run.returncode == 0, run.status


def test_bash_takes_over_when_ssm_starts_the_script_with_sh(sandbox: Sandbox, ca: Issued) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)

    run = sandbox.run(sandbox.parameters(new), shell="sh")

    assert (run.returncode, run.status) == (0, f"INSTALLED {new.fingerprint} {sandbox.cert_path}")


# --- refused: nothing touched, nothing reloaded -----------------------------------------------


def _refused(sandbox: Sandbox, run: Run, before: dict[Path, tuple[bytes, int, int]]) -> None:
    assert run.returncode == 2, run.status
    assert run.status.startswith("REFUSED: "), run.status
    assert sandbox.snapshot() == before  # same files, same bytes, same mtimes: no .bak either
    assert sandbox.calls("reload") == 0


def test_a_key_that_does_not_match_the_certificate_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem, key=make_leaf(ca).encrypted_key())
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new))

    _refused(sandbox, run, before)
    assert run.status == "REFUSED: the private key does not match the certificate"


def test_a_certificate_with_another_fingerprint_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new, expected = make_leaf(ca), make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(expected))

    _refused(sandbox, run, before)
    assert run.status == (
        f"REFUSED: cert.pem has fingerprint {new.fingerprint}, expected {expected.fingerprint}"
    )


@pytest.mark.parametrize(
    ("valid_for", "overrides"),
    [
        (timedelta(days=1), {}),  # the document's default MinValidDays, 2
        (timedelta(days=30), {"MinValidDays": "45"}),
    ],
    ids=["one-day-left-default", "thirty-days-left-45-wanted"],
)
def test_a_certificate_expiring_too_soon_is_refused_before_anything_is_touched(
    sandbox: Sandbox, ca: Issued, current: Issued, valid_for: timedelta, overrides: dict[str, str]
) -> None:
    """SSM-04: a stale bundle never replaces what the host serves, and nothing reloads."""
    new = make_leaf(ca, valid_for=valid_for)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, **overrides))

    _refused(sandbox, run, before)
    days = overrides.get("MinValidDays", "2")
    not_after = new.cert.not_valid_after_utc.strftime("%b %e %H:%M:%S %Y GMT")
    assert run.status == (
        f"REFUSED: cert.pem expires within MinValidDays ({days} days): notAfter={not_after}"
    )


def test_a_certificate_expiring_after_min_valid_days_is_installed(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca, valid_for=timedelta(days=1))
    sandbox.fetch(new, ca.pem)

    run = sandbox.run(sandbox.parameters(new, MinValidDays="0"))

    assert (run.returncode, run.status) == (0, f"INSTALLED {new.fingerprint} {sandbox.cert_path}")
    assert sandbox.cert_path.read_bytes() == new.pem
    assert sandbox.calls("reload") == 1


def test_a_wrong_passphrase_is_refused(sandbox: Sandbox, ca: Issued, current: Issued) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem, key=new.encrypted_key("another-passphrase-of-32-chars-xx"))
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new))

    _refused(sandbox, run, before)
    assert run.status == "REFUSED: privkey.pem cannot be decrypted with the passphrase file"


def test_a_passphrase_file_readable_by_others_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    (sandbox.work / "passphrase").chmod(0o644)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new))

    _refused(sandbox, run, before)
    assert "passphrase file is readable by others" in run.status


@pytest.mark.parametrize("chain", ["other-ca", "leaf-itself"])
def test_a_chain_that_did_not_issue_the_certificate_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued, chain: str
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, make_ca("Someone Else").pem if chain == "other-ca" else new.pem + ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new))

    _refused(sandbox, run, before)
    assert "chain.pem" in run.status


def test_the_hosts_trust_store_does_not_stand_in_for_the_chain(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    """The real issuer sits in the default CA directory; chain.pem holds another CA."""
    store = sandbox.root / "system-ca"
    store.mkdir()
    subject_hash = (
        subprocess.run(
            ["openssl", "x509", "-noout", "-subject_hash"],
            input=ca.pem,
            capture_output=True,
            check=True,
            timeout=30,
        )
        .stdout.decode()
        .strip()
    )
    (store / f"{subject_hash}.0").write_bytes(ca.pem)
    (store / "bundle.pem").write_bytes(ca.pem)
    new = make_leaf(ca)
    sandbox.fetch(new, make_ca("Someone Else").pem)
    before = sandbox.snapshot()

    run = sandbox.run(
        sandbox.parameters(new),
        extra_env={"SSL_CERT_DIR": str(store), "SSL_CERT_FILE": str(store / "bundle.pem")},
    )

    _refused(sandbox, run, before)
    assert run.status.startswith("REFUSED: chain.pem does not verify cert.pem")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("www.example.com",), NAME),
        (("*.example.com",), NAME),  # a wildcard covers exactly one label
        (("internal.example.com",), NAME),
    ],
)
def test_a_certificate_that_does_not_cover_the_name_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued, names: tuple[str, ...], expected: str
) -> None:
    new = make_leaf(ca, names=names)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, ExpectedName=expected))

    _refused(sandbox, run, before)
    assert run.status == f"REFUSED: the certificate's DNS names do not cover {NAME}"


def test_a_config_already_broken_is_refused_before_anything_is_touched(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    config_test = sandbox.command("configtest", codes=[1])
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, ConfigTest=config_test))

    _refused(sandbox, run, before)
    assert run.status == "REFUSED: the config test fails before installing (exit 1)"


def test_an_agent_without_env_var_parameters_is_refused(sandbox: Sandbox, ca: Issued) -> None:
    new = make_leaf(ca)
    params = sandbox.parameters(new)
    del params["WorkDir"]

    run = sandbox.run(params, validate=False)

    assert run.returncode == 2
    assert run.status.startswith("REFUSED: parameter WorkDir is empty")
    assert "SSM Agent" in run.status


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Reload", "touch {pwned}; true"),
        ("Reload", "touch $(touch {pwned})"),
        ("Reload", "systemctl reload nginx"),
        ("Reload", "systemd:nginx;touch${{IFS}}{pwned}"),
        ("Reload", "systemd:" + "u" * 252),  # a unit name one character too long
        ("Reload", "script:/bin/sh -c touch {pwned}"),
        ("ConfigTest", "true && touch {pwned}"),
        ("ConfigTest", "script:{etc}/../../x"),
        ("CertPath", "{etc}/../../x`touch {pwned}`"),
        ("VerifyPort", "443; touch {pwned}"),
    ],
)
def test_the_script_refuses_injection_even_without_ssm_patterns(
    sandbox: Sandbox, ca: Issued, current: Issued, name: str, value: str
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    pwned = sandbox.root / "pwned"
    before = sandbox.snapshot()

    params = sandbox.parameters(new, **{name: value.format(pwned=pwned, etc=sandbox.etc)})
    run = sandbox.run(params, validate=False)

    _refused(sandbox, run, before)
    assert f"parameter {name} " in run.status
    assert not pwned.exists()


# --- rolled back: previous files restored, reload run again ------------------------------------


def _rolled_back(sandbox: Sandbox, run: Run, before: dict[Path, tuple[bytes, int, int]]) -> None:
    assert run.returncode == 3, run.status
    assert run.status.startswith("ROLLED BACK: "), run.status
    for path in sandbox.targets:
        assert path.read_bytes() == before[path][0]
        assert mode(path) == before[path][2]


def test_a_failed_reload_rolls_back_and_the_previous_certificate_is_served_again(
    sandbox: Sandbox, ca: Issued, current: Issued, listener: TlsListener
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    # The first reload applies the new files and still fails; the second one succeeds.
    sandbox.command("reload", codes=[1, 0], signal="always")
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, VerifyPort=str(listener.port)))

    _rolled_back(sandbox, run, before)
    assert run.status == "ROLLED BACK: the reload failed (exit 1)"
    assert sandbox.calls("reload") == 2
    assert listener.loaded == [new.fingerprint, current.fingerprint]
    assert served_fingerprint(listener.port) == current.fingerprint


def test_a_service_that_keeps_serving_the_old_certificate_rolls_back(
    sandbox: Sandbox, ca: Issued, current: Issued, listener: TlsListener
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    sandbox.command("reload", codes=[0, 0], signal="never")  # says yes, does nothing
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, VerifyPort=str(listener.port)))

    _rolled_back(sandbox, run, before)
    assert run.status == (
        f"ROLLED BACK: 127.0.0.1:{listener.port} ({NAME}) serves {current.fingerprint}, "
        f"not {new.fingerprint}, after {VERIFY_TIMEOUT}s"
    )
    assert sandbox.calls("reload") == 2
    assert run.seconds < int(VERIFY_TIMEOUT) + 15  # the wait is bounded
    assert served_fingerprint(listener.port) == current.fingerprint


def test_nothing_listening_on_the_verify_port_rolls_back(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, VerifyPort=str(free_port()), VerifyTimeout="1"))

    _rolled_back(sandbox, run, before)
    assert "no TLS answer" in run.status
    assert sandbox.calls("reload") == 2


def test_a_config_test_failing_with_the_new_files_rolls_back(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    config_test = sandbox.command("configtest", codes=[0, 1])
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, ConfigTest=config_test))

    _rolled_back(sandbox, run, before)
    assert run.status == "ROLLED BACK: the config test fails with the new certificate (exit 1)"
    assert sandbox.calls("reload") == 1  # only the reload after restoring


def test_a_first_install_that_fails_removes_the_new_files(sandbox: Sandbox, ca: Issued) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    sandbox.command("reload", codes=[1, 0])

    run = sandbox.run(sandbox.parameters(new))

    assert (run.returncode, run.status) == (3, "ROLLED BACK: the reload failed (exit 1)")
    assert list(sandbox.etc.iterdir()) == []


def test_a_reload_that_fails_after_restoring_needs_a_person(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    sandbox.command("reload", codes=[1, 1])
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new))

    assert run.returncode == 4
    assert run.status == (
        "ROLLBACK FAILED: the reload failed (exit 1); the reload after restoring failed (exit 1)"
    )
    for path in sandbox.targets:
        assert path.read_bytes() == before[path][0]


def test_an_install_interrupted_by_sigterm_rolls_back(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    started = sandbox.root / "slow.log"
    slow = sandbox.bin / "slow"
    slow.write_text(f'#!/bin/sh\necho called >> "{started}"\nsleep 1\n')
    slow.chmod(0o755)
    params = sandbox.parameters(new, Reload=f"script:{slow}")
    before = sandbox.snapshot()
    env = {
        "PATH": os.environ["PATH"],
        "TMPDIR": str(sandbox.tmp),
        "CERTRELAY_HOOK_DIRS_FILE": str(sandbox.hook_dirs),
    }
    env.update({f"SSM_{name}": value for name, value in params.items()})

    with subprocess.Popen(
        ["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.terminate()  # SIGTERM, as an SSM cancel or timeout would send
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)

    run = Run(process.returncode, stdout, stderr, 0.0)
    sandbox.check_hygiene(run)
    _rolled_back(sandbox, run, before)
    assert run.status == "ROLLED BACK: interrupted by SIGTERM"
    assert started.read_text().count("called") == 2  # the reload ran again after restoring


# --- adapters: names, never command lines ------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "tests", "reload"),
    [
        ("nginx", ["nginx -t -q"], "systemctl reload nginx"),
        ("haproxy", ["haproxy -c -q -f /etc/haproxy/haproxy.cfg"], "systemctl reload haproxy"),
        ("envoy", ["envoy --mode validate -c /etc/envoy/envoy.yaml"], "systemctl reload envoy"),
        ("systemd:php8.2-fpm", [], "systemctl reload php8.2-fpm"),
        ("systemd:" + "u" * 251, [], "systemctl reload " + "u" * 251),  # the longest unit name
    ],
)
def test_a_named_adapter_runs_its_own_config_test_and_reload(
    sandbox: Sandbox, ca: Issued, current: Issued, adapter: str, tests: list[str], reload: str
) -> None:
    for tool in ("nginx", "haproxy", "envoy", "systemctl"):
        sandbox.tool(tool)
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)

    run = sandbox.run(sandbox.parameters(new, Reload=adapter))

    assert (run.returncode, run.status) == (0, f"INSTALLED {new.fingerprint} {sandbox.cert_path}")
    # the config test before touching anything, again with the new files, then the reload
    assert sandbox.tool_calls() == [*tests, *tests, reload]


@pytest.mark.parametrize(
    ("units", "reloaded"),
    [("apache2.service", "systemctl reload apache2"), ("httpd.service", "systemctl reload httpd")],
)
def test_the_apache_adapter_reloads_whichever_unit_the_distribution_has(
    sandbox: Sandbox, ca: Issued, current: Issued, units: str, reloaded: str
) -> None:
    sandbox.tool("apachectl")
    sandbox.tool("systemctl", f'if [ "$1" = cat ]; then [ "$2" = "{units}" ]; fi')
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)

    run = sandbox.run(sandbox.parameters(new, Reload="apache"))

    assert run.returncode == 0, run.status
    calls = [c for c in sandbox.tool_calls() if not c.startswith("systemctl cat")]
    assert calls == ["apachectl configtest", "apachectl configtest", reloaded]


def test_a_named_adapter_whose_config_test_fails_with_the_new_files_rolls_back(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    counter = sandbox.root / "nginx-t"
    # passes with today's files, fails once the new ones are in place
    sandbox.tool("nginx", f'echo x >> "{counter}"; [ "$(wc -l < "{counter}")" -lt 2 ]')
    sandbox.tool("systemctl")
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, Reload="nginx"))

    _rolled_back(sandbox, run, before)
    assert run.status == "ROLLED BACK: the config test fails with the new certificate (exit 1)"
    assert sandbox.tool_calls()[-1] == "systemctl reload nginx"  # the reload after restoring


def test_a_config_test_with_a_named_adapter_is_refused(
    sandbox: Sandbox, ca: Issued, current: Issued
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    config_test = sandbox.command("configtest", codes=[0])
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, Reload="nginx", ConfigTest=config_test))

    _refused(sandbox, run, before)
    assert run.status.startswith("REFUSED: parameter ConfigTest is only for a script: Reload")
    assert sandbox.calls("configtest") == 0


def _hook_outside_the_list(sandbox: Sandbox) -> str:
    other = sandbox.root / "elsewhere"
    other.mkdir(mode=0o755)
    hook = other / "reload"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    return f"script:{hook}"


def _hook_writable_by_others(sandbox: Sandbox) -> str:
    hook = sandbox.command("reload", codes=[0])
    Path(hook.removeprefix("script:")).chmod(0o777)
    return hook


def _hook_through_a_link(sandbox: Sandbox) -> str:
    link = sandbox.bin / "reload-link"
    link.symlink_to(sandbox.bin / "reload")
    return f"script:{link}"


def _no_hook_list(sandbox: Sandbox) -> str:
    sandbox.hook_dirs.unlink()
    return f"script:{sandbox.bin / 'reload'}"


def _hook_list_writable_by_others(sandbox: Sandbox) -> str:
    sandbox.hook_dirs.chmod(0o666)
    return f"script:{sandbox.bin / 'reload'}"


@pytest.mark.parametrize(
    ("make_hook", "problem"),
    [
        (_hook_outside_the_list, "is not under a directory listed in"),
        (_hook_writable_by_others, "writable by others"),
        (_hook_through_a_link, "is not an executable regular file"),
        (_no_hook_list, "does not exist, so no hook directory is listed"),
        (_hook_list_writable_by_others, "hook-dirs is writable by others"),
    ],
)
def test_a_script_adapter_runs_only_trusted_scripts_in_a_listed_directory(
    sandbox: Sandbox, ca: Issued, current: Issued, make_hook: Any, problem: str
) -> None:
    new = make_leaf(ca)
    sandbox.fetch(new, ca.pem)
    reload = make_hook(sandbox)
    before = sandbox.snapshot()

    run = sandbox.run(sandbox.parameters(new, Reload=reload))

    assert run.returncode == 2, run.status
    assert run.status.startswith("REFUSED: hook script refused: "), run.status
    assert problem in run.status
    assert sandbox.snapshot() == before
