"""The waiting task token at rest: encrypted under the approval key, bound to its record.

Request Approval encrypts the token client-side (kms:Encrypt) with an encryption context naming
the record that holds it (`request#<sha256(token)>`), so the ciphertext opens for that record only;
the key policy lets only the approval function decrypt. The decision removes the ciphertext in the
same conditional update that marks the record decided, so no decided record keeps a token.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

TOKEN_FIELD = "token_ciphertext"  # noqa: S105 - a name; the request record's attribute holding the sealed token
CONTEXT_KEY = "certrelay:record"  # the encryption context's one key (the key policy checks it)


class Kms(Protocol):
    """The two KMS calls made on the task token."""

    def encrypt(
        self, *, KeyId: str, Plaintext: bytes, EncryptionContext: Mapping[str, str]
    ) -> Mapping[str, Any]: ...

    def decrypt(
        self, *, CiphertextBlob: bytes, KeyId: str, EncryptionContext: Mapping[str, str]
    ) -> Mapping[str, Any]: ...


def seal(kms: Kms, key_arn: str, record_pk: str, token: str) -> str:
    """The token encrypted for the record `record_pk`, as base64 text to store."""
    blob = kms.encrypt(
        KeyId=key_arn, Plaintext=token.encode(), EncryptionContext={CONTEXT_KEY: record_pk}
    )["CiphertextBlob"]
    return base64.b64encode(bytes(blob)).decode()


def unseal(kms: Kms, key_arn: str, record_pk: str, sealed: str) -> str:
    """The token back from what `seal` stored for the same record."""
    plain = kms.decrypt(
        CiphertextBlob=base64.b64decode(sealed),
        KeyId=key_arn,
        EncryptionContext={CONTEXT_KEY: record_pk},
    )["Plaintext"]
    return bytes(plain).decode()
