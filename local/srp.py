"""The server side of Cognito's SRP password check (SRP-6a over the 3072-bit group, SHA-256).

moto answers ``USER_SRP_AUTH`` with random ``SRP_B`` and ``SALT`` and never checks the client's
``PASSWORD_CLAIM_SIGNATURE``, so any password would sign in. The local gateway does the server's
half itself, from the user's password, so a wrong password is refused as Cognito refuses it.

Every formula mirrors the client that must agree with it, AWS Amplify JS v6
(aws-amplify/amplify-js, packages/auth/src/providers/cognito/utils/srp/): ``constants.ts`` (N),
``AuthenticationHelper.ts`` (k, x, the HKDF info), ``calculate/calculateU.ts``,
``getPaddedHex.ts``, ``getHkdfKey.ts`` and ``getSignatureString.ts``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

N = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E"
    "3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB"
    "6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A6916"
    "3FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C"
    "32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA95"
    "6AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA7157"
    "5D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D876"
    "02733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E"
    "4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
    16,
)
G = 2
_INFO = b"Caldera Derived Key\x01"


def padded_hex(value: int) -> str:
    """Even-length hex, with ``00`` in front when the top bit is set (positive two's complement)."""
    text = format(value, "x")
    if len(text) % 2:
        text = "0" + text
    return "00" + text if text[0] in "89abcdef" else text


def _hash_hex(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(_hash_hex(padded_hex(N) + padded_hex(G)), 16)


def _x(pool_name: str, user_id: str, password: str, salt: int) -> int:
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    return int(_hash_hex(padded_hex(salt) + inner), 16)


@dataclass(frozen=True)
class SrpChallenge:
    """One PASSWORD_VERIFIER challenge the server issued: what it sent and its secret ``b``."""

    pool_name: str
    user_id: str
    salt: int
    b: int
    big_b: int
    big_a: int
    verifier: int

    @classmethod
    def start(cls, pool_name: str, user_id: str, password: str, srp_a_hex: str) -> SrpChallenge:
        big_a = int(srp_a_hex, 16)
        if big_a % N == 0:
            raise ValueError("SRP_A must not be zero modulo N")
        salt = int.from_bytes(secrets.token_bytes(16), "big")
        verifier = pow(G, _x(pool_name, user_id, password, salt), N)
        b = secrets.randbelow(N - 1) + 1
        big_b = (K * verifier + pow(G, b, N)) % N
        return cls(pool_name, user_id, salt, b, big_b, big_a, verifier)

    @property
    def challenge_parameters(self) -> dict[str, str]:
        return {"SALT": format(self.salt, "x"), "SRP_B": format(self.big_b, "x")}

    def expected_signature(self, secret_block: str, timestamp: str) -> str:
        u = int(_hash_hex(padded_hex(self.big_a) + padded_hex(self.big_b)), 16)
        shared = pow(self.big_a * pow(self.verifier, u, N), self.b, N)
        prk = hmac.digest(bytes.fromhex(padded_hex(u)), bytes.fromhex(padded_hex(shared)), "sha256")
        key = hmac.digest(prk, _INFO, "sha256")[:16]
        message = (
            self.pool_name.encode()
            + self.user_id.encode()
            + _secret_block_bytes(secret_block)
            + timestamp.encode()
        )
        return base64.b64encode(hmac.digest(key, message, "sha256")).decode()

    def verify(self, secret_block: str, timestamp: str, signature: str) -> bool:
        expected = self.expected_signature(secret_block, timestamp)
        return hmac.compare_digest(expected.encode(), signature.encode())


def _secret_block_bytes(secret_block: str) -> bytes:
    """The secret block decoded as Amplify decodes it (URL-safe or standard base64)."""
    text = secret_block.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))
