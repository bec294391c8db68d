"""safetensors files for the Python test drivers, with torch alone (no safetensors package): the format is
an 8-byte little-endian header length, a JSON header, then the tensors' bytes."""
import json
import struct

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        buf = bytearray(data[8 + n + a : 8 + n + b])
        t = torch.frombuffer(buf, dtype=DTYPES[h["dtype"]]) if b > a else torch.zeros(0, dtype=DTYPES[h["dtype"]])
        out[name] = t.reshape(h["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    """Every tensor as F64."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().to(torch.float64)
        blob = t.numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
