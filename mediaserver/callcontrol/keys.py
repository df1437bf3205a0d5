"""The Ed25519 key pair that signs Call Control webhooks (SPEC sections 1 and 5).

Theory of operation. Telnyx signs each webhook with its private key and
publishes the public key; applications verify with the SDK's
``webhooks.unwrap(body, headers=..., key=PUBLIC_KEY)``. Here the server is
Telnyx: on its first start it generates a key pair, keeps the private key in
``<data dir>/data/callcontrol-key.pem`` (PKCS#8 PEM, mode 0600, like the API
key next to it) and prints the public key once on stdout as
``callcontrol-public-key BASE64`` before the ``listening`` line. Later starts
read the file and print nothing; ``mediaserver keys`` prints it again. The
public key is given as the SDK wants it: the base64 of its 32 raw bytes.

Deleting the file makes the next start generate a new pair, and every
application must then be given the new public key.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediaserver.config import Config
from mediaserver.log import get_logger
from mediaserver.private_files import write_private

log = get_logger("callcontrol")

KEY_FILE = Path("data") / "callcontrol-key.pem"
BANNER = "callcontrol-public-key"


class KeyFileError(Exception):
    """The key file exists but holds no Ed25519 private key; the message names it and the fix."""


def key_file(config: Config) -> Path:
    """Where the signing key is kept: ``<data dir>/data/callcontrol-key.pem``."""
    return config.storage_path(KEY_FILE)


def read_signing_key(path: Path) -> Ed25519PrivateKey | None:
    """The private key kept in ``path``; None when there is none (missing or empty file)."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    if not pem.strip():
        return None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{path}: not a readable PEM private key ({exc}); delete the file to have a new key"
            " pair generated (applications then need the new public key)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"{path}: holds a {type(key).__name__}, not an Ed25519 key; delete the file to have"
            " a new key pair generated (applications then need the new public key)"
        )
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """The public half as the Telnyx SDK takes it: base64 of the 32 raw bytes."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def signing_key(config: Config) -> Ed25519PrivateKey:
    """The kept key, or a new one written 0600 and its public half printed once on stdout."""
    path = key_file(config)
    key = read_signing_key(path)
    if key is not None:
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem.decode("ascii"))
    print(f"{BANNER} {public_key_b64(key)}", flush=True)
    log.warning("generated the Call Control signing key (public key printed)", path=str(path))
    return key
