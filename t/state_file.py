"""Reads and writes the zone's state file (mcp_auth_zone ... state=FILE), so
that tests can see what nginx saved -- each entry's class included -- and
hand it a file of the previous format.

The file is the core's KeyRing::seal (src/crypto.cpp) of the glue's
plaintext (nginx/ngx_http_mcp_auth_state.c):

    sealed    = KID "." base64url(iv[12] || AES-256-GCM(plaintext) || tag[16]),
                AAD "mcpauth-v1|" KID "|" 0x03 (the state-file purpose)
    plaintext = "MCPAST2\\n" then per entry: key length (2 bytes), value
                length (4), expiry (8, signed), class (1: unauthenticated),
                key, value -- host byte order
                ("MCPAST1\\n": the same without the class byte)

    entries = read_state(path, keys_path)   # [Entry(key, value, expires, unauthenticated)]
    write_state(path, keys_path, entries, version=1)
"""

import base64
import os
import struct
from collections import namedtuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

Entry = namedtuple("Entry", "key value expires unauthenticated")

PURPOSE_STATE_FILE = 3
MAGIC = {1: b"MCPAST1\n", 2: b"MCPAST2\n"}


def _b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _keys(keys_path):
    """KID -> key bytes, in the file's order (the first one seals)."""
    out = {}
    for line in open(keys_path).read().splitlines():
        if line.strip() and not line.startswith("#"):
            kid, key = line.split()
            out[kid] = _b64d(key)
    return out


def _aad(kid):
    return b"mcpauth-v1|" + kid.encode() + b"|" + bytes([PURPOSE_STATE_FILE])


def read_state(path, keys_path):
    """The entries of a state file, in the file's order, and its version."""
    sealed = open(path, "rb").read().decode().strip()
    kid, blob = sealed.split(".", 1)
    blob = _b64d(blob)
    plain = AESGCM(_keys(keys_path)[kid]).decrypt(blob[:12], blob[12:], _aad(kid))
    version = next(v for v, m in MAGIC.items() if plain.startswith(m))
    head = 15 if version == 2 else 14
    p, entries = 8, []
    while p < len(plain):
        klen, vlen, expires = struct.unpack_from("=HIq", plain, p)
        unauth = plain[p + 14] == 1 if version == 2 else None
        p += head
        entries.append(Entry(plain[p:p + klen], plain[p + klen:p + klen + vlen], expires, unauth))
        p += klen + vlen
    return version, entries


def write_state(path, keys_path, entries, version=2):
    """Seals entries as a state file of this version (1: no classes)."""
    plain = [MAGIC[version]]
    for e in entries:
        plain.append(struct.pack("=HIq", len(e.key), len(e.value), e.expires))
        if version == 2:
            plain.append(b"\x01" if e.unauthenticated else b"\x00")
        plain += [e.key, e.value]
    kid, key = next(iter(_keys(keys_path).items()))
    iv = os.urandom(12)
    blob = iv + AESGCM(key).encrypt(iv, b"".join(plain), _aad(kid))
    text = kid + "." + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    with open(path, "w") as f:
        f.write(text)
