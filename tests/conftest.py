"""Settings every test shares."""

from __future__ import annotations

import functools
import gc
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore import loaders

# moto with several accounts (the hub's cross-account tests): the `accounts` fixture.
from tests.functional.org_accounts import accounts  # noqa: F401

# The cyclic collector while the tests run: a young collection every 50,000 net allocations
# (CPython's default is 700) and a full one after 50 x 20 of those. With the default, full
# collections walked moto's and botocore's objects, and every engine a test had left for
# collection, about once a second: a fifth of a statemachine test's CPU. Garbage still goes,
# in larger batches; a worker holds a few hundred MB more at its peak.
YOUNG_COLLECTION_EVERY = 50_000
MIDDLE_EVERY = 50
FULL_EVERY = 20


# pytest keeps each test module's assertion-rewritten code in a pyc of its own (in __pycache__,
# checked against the source), but writes it only where Python may write bytecode, and
# PYTHONDONTWRITEBYTECODE is set on this machine: every xdist worker of every run rewrote the
# ~115 test modules again, 2.4 s of CPU each (half its collection). It may while the tests are
# collected: a later run reads them (3 workers collecting: 13.6-15.3 s of CPU before, 6.9-7.4 s
# after), and on a fresh clone a worker reads what another has just rewritten (12.6 s).
BYTECODE_WRITTEN_OTHERWISE = not sys.dont_write_bytecode


def pytest_configure(config: pytest.Config) -> None:
    sys.dont_write_bytecode = False


def pytest_unconfigure(config: pytest.Config) -> None:
    sys.dont_write_bytecode = not BYTECODE_WRITTEN_OTHERWISE


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the test modules are imported (in each xdist worker): what the imports built lives
    until the process ends, so it is moved out of the collector's sight (gc.freeze), and the
    collector runs in larger batches from here on. Bytecode is written again only as the
    environment says."""
    sys.dont_write_bytecode = not BYTECODE_WRITTEN_OTHERWISE
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, MIDDLE_EVERY, FULL_EVERY)


@pytest.fixture(autouse=True)
def kept_runs_in_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`certrelay local run` and the demo keep their executions for `certrelay history`: in a
    test, in a folder of its own under pytest's temporary directory, never in the user's
    ~/.local/state. The folder is named, not made (certrelay makes it when it keeps a run): a
    `tmp_path` for each of the 2,000 tests cost a directory listing, a folder and a link each,
    and their removal by a later run."""
    folder = tmp_path_factory.getbasetemp() / "kept-runs" / uuid.uuid4().hex
    monkeypatch.setenv("CERTRELAY_STATE_DIR", str(folder))


@pytest.fixture(scope="session", autouse=True)
def aws_models_parsed_once_per_process() -> Iterator[None]:
    """botocore keeps the service models it parsed in its Loader, one per session, and moto
    begins every mock with a new default session: each test re-read and re-parsed the JSON
    models of every client it made (about a third of a moto test's time). Loaders with the same
    search paths share one cache for the test process, as one long-lived session would; the
    models are the same files, read once."""
    shared: dict[tuple[str, ...], dict[Any, Any]] = {}
    original = loaders.Loader.__init__

    def sharing(self: loaders.Loader, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._cache = shared.setdefault(tuple(self.search_paths), {})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loaders.Loader, "__init__", sharing)
        yield


@pytest.fixture(scope="session", autouse=True)
def moto_spares_work_no_test_reads() -> Iterator[None]:
    """Two things moto 5.2.5 computes that no test (and no AWS behaviour certrelay relies on)
    reads, each now made once or when used, for the tests' own mock_aws fixtures as for the
    engine's:

    - CreateKey generates an RSA-2048 pair for every KMS key, symmetric ones too: made the
      first time the key uses it (the engine's own fix, moto_fixes.kms_key_pairs_made_when_used);
    - SNS signs each delivery to an SQS or HTTP subscription with a key pair it generates per
      subscription: one pair for the test process, as AWS signs with one certificate per region
      (no test checks a signature).

    Each RSA pair is 0.05-0.3 s of CPU; the approval tests made three per test, two of them
    these."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.sns.models import Subscription

    from certrelay.local.moto_fixes import kms_key_pairs_made_when_used

    @functools.cache
    def signing_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with kms_key_pairs_made_when_used(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(Subscription, "private_key", lambda _self: signing_key())
        yield


@pytest.fixture(scope="session", autouse=True)
def moto_checks_no_key_it_just_made() -> Iterator[None]:
    """RequestCertificate in moto 5.2.5 generates an RSA-2048 pair, writes the key as PEM and
    reads it back (CertBundle.validate_pk), and cryptography checks an RSA key's numbers as it
    reads one: 40-45 ms of CPU, more than generating the pair. A key moto has just generated
    itself is read back here without that check; its PEM, certificate and every answer are the
    same. A key given to ImportCertificate is still read with the check."""
    from cryptography.hazmat.primitives import serialization
    from moto.acm.models import CertBundle

    generating = threading.local()
    generate_cert = CertBundle.generate_cert.__func__  # type: ignore[attr-defined]
    validate_pk = CertBundle.validate_pk

    def generated(cls: type[CertBundle], *args: Any, **kwargs: Any) -> CertBundle:
        generating.active = True
        try:
            bundle: CertBundle = generate_cert(cls, *args, **kwargs)
        finally:
            generating.active = False
        return bundle

    def read(bundle: CertBundle) -> Any:
        if getattr(generating, "active", False):
            return serialization.load_pem_private_key(
                bundle.key, password=None, unsafe_skip_rsa_key_validation=True
            )
        return validate_pk(bundle)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CertBundle, "generate_cert", classmethod(generated))
        patch.setattr(CertBundle, "validate_pk", read)
        yield


@pytest.fixture(scope="session", autouse=True)
def private_ca_keys_made_when_used() -> Iterator[None]:
    """CreateCertificateAuthority in moto 5.2.5 generates the CA's RSA-2048 key at once (35-45 ms
    of CPU), and most tests' CAs never sign anything: ACM's private certificates come from moto's
    own issuer. Here the key is generated, and kept encrypted with the CA's password as moto
    keeps it, the first time the CA reads it (`private_bytes`, which its `key` decrypts);
    nothing else changes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.acmpca import models as acmpca

    making = threading.Lock()  # one key per CA, whichever thread reads it first
    not_yet = b""  # what __init__ stores for the key it no longer generates

    class KeyLater:
        """moto's key as __init__ sees it: its encrypted bytes, made later."""

        def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
            return not_yet

    class RsaKeysLater:
        """`rsa` in moto.acmpca.models, whose only key generation is CertificateAuthority's
        __init__ (moto 5.2.5): generate_private_key defers; everything else is cryptography's."""

        def generate_private_key(self, *args: Any, **kwargs: Any) -> KeyLater:
            return KeyLater()

        def __getattr__(self, name: str) -> Any:
            return getattr(rsa, name)

    def read(ca: Any) -> bytes:
        with making:
            made: bytes | None = ca.__dict__.get("_private_bytes")
            if not made:
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                made = key.private_bytes(
                    encoding=serialization.Encoding.PEM,
                    format=serialization.PrivateFormat.TraditionalOpenSSL,
                    encryption_algorithm=serialization.BestAvailableEncryption(ca.password),
                )
                ca.__dict__["_private_bytes"] = made
            return made

    def write(ca: Any, value: bytes) -> None:
        ca.__dict__["_private_bytes"] = value

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acmpca, "rsa", RsaKeysLater())
        patch.setattr(
            acmpca.CertificateAuthority, "private_bytes", property(read, write), raising=False
        )
        yield
