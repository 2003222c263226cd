"""Ed25519 manifest signatures (exchange.md §1).

The signature covers the canonical JSON of the manifest without its `signature` field: keys
sorted, UTF-8, no insignificant whitespace. It is stored base64-encoded. The private key lives in
`<key_dir>/manifest-signing-ed25519.pem` (PKCS#8 PEM, mode 0600), created on first use; the public
key (`SigningKey.public_pem()`) is what operators distribute (`safecredit signing-key export`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import VerificationError

log = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "manifest-signing-ed25519.pem"
PUBLIC_KEY_FILE = "manifest-signing-ed25519.pub.pem"


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signing_bytes(manifest: Mapping[str, Any]) -> bytes:
    """What is signed: the manifest without `signature`, canonical JSON."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def _public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint_of(public_key: Ed25519PublicKey) -> str:
    """The fingerprint of a public key: sha256 of its 32 raw bytes, hex (what the check report prints)."""
    return hashlib.sha256(_public_raw(public_key)).hexdigest()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: the first 16 hex of `fingerprint_of`."""
    return fingerprint_of(public_key)[:16]


def load_public_key(public_key_pem: str | bytes) -> Ed25519PublicKey:
    data = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise VerificationError(f"not a PEM public key: {exc}", "不是有效的 PEM 公钥") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise VerificationError("the public key is not an Ed25519 key", "公钥不是 Ed25519 密钥")
    return key


def verify_manifest_signature(manifest: Mapping[str, Any], public_key_pem: str | bytes) -> None:
    """Raise VerificationError unless `manifest["signature"]` verifies with the public key."""
    sig = manifest.get("signature")
    if not isinstance(sig, str) or not sig:
        raise VerificationError("manifest has no signature", "清单缺少签名")
    try:
        raw = base64.b64decode(sig, validate=True)
    except ValueError as exc:
        raise VerificationError("manifest signature is not valid base64", "清单签名不是有效的 base64") from exc
    try:
        load_public_key(public_key_pem).verify(raw, signing_bytes(manifest))
    except InvalidSignature as exc:
        raise VerificationError(
            "manifest signature does not verify with the given public key (manifest altered, or signed by another key)",
            "清单签名验证失败（清单被改动，或由其他密钥签名）",
        ) from exc


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter (the home's `keys/`: the signing key and the
    person-id key): created 0700, and tightened when an earlier `mkdir -p` left it at the umask's 0755."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o700)
    return path


class SigningKey:
    """The operator's Ed25519 manifest-signing key."""

    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None):
        self._key = private_key
        self.path = path

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        path = Path(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:  # a key others can read signs for them too: refuse, as ssh does
            raise VerificationError(
                f"signing key {path} is accessible by group/others (mode {mode:o}); run `chmod 600 {path}`",
                f"签名私钥 {path} 对同组或其他用户可读（权限 {mode:o}），请执行 `chmod 600 {path}`",
            )
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise VerificationError(f"{path} is not an Ed25519 private key", f"{path} 不是 Ed25519 私钥")
        return cls(key, path)

    @classmethod
    def load_or_create(cls, key_dir: Path) -> SigningKey:
        """Load `<key_dir>/manifest-signing-ed25519.pem`, generating it (0600) if absent."""
        key_dir = Path(key_dir)
        path = key_dir / PRIVATE_KEY_FILE
        if path.exists():
            private_dir(key_dir)
            return cls.load(path)
        private_dir(key_dir)
        new = cls.generate()
        pem = new._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = key_dir / f".{PRIVATE_KEY_FILE}.tmp-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if a concurrent creator won: then use theirs
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        loaded = cls.load(path)
        pub = key_dir / PUBLIC_KEY_FILE
        if not pub.exists():
            pub.write_text(loaded.public_pem(), encoding="ascii")
        log.info("generated manifest signing key %s (key id %s)", path, loaded.key_id)
        return loaded

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def public_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def sign_manifest(self, manifest: Mapping[str, Any]) -> str:
        """The base64 signature of `manifest` (its `signature` field, if any, is ignored)."""
        return base64.b64encode(self.sign(signing_bytes(manifest))).decode("ascii")
