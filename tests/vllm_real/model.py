"""Build a tiny random-weight Llama model directory that a real vLLM server can serve with
`--load-format dummy` (no weights are ever read or downloaded).

The directory holds only:

- `config.json`: LlamaForCausalLM, hidden 256, 2 layers, 4 heads, 2 KV heads, head_dim 64
  (vLLM's CPU attention kernel refuses head_dim 16), vocabulary = the tokenizer's;
- `generation_config.json`: bos / eos ids;
- `tokenizer.json`: a byte-level BPE of a few hundred tokens trained here, with the
  `tokenizers` library, on a few sentences (byte-level, so any text and any JSON that
  structured outputs may force can be written);
- `tokenizer_config.json`: bos/eos/pad tokens and a Llama-4-style chat template that lists
  the tools in the system turn and replays assistant tool calls in the pythonic form
  `[name(arg=value, ...)]` that vLLM's `llama4_pythonic` tool parser reads.

Run in the vLLM virtual environment (it has `tokenizers`):

    .venv-vllm/bin/python tests/vllm_real/model.py /tmp/tiny-llama
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BOS = "<|begin_of_text|>"
END_OF_TEXT = "<|end_of_text|>"
EOT = "<|eot|>"
PAD = "<|finetune_right_pad|>"
SPECIAL_TOKENS = [
    BOS,
    END_OF_TEXT,
    EOT,
    PAD,
    "<|header_start|>",
    "<|header_end|>",
    "<|python_start|>",
    "<|python_end|>",
]
#: Target size of the trained vocabulary (256 byte symbols + merges + special tokens).
VOCAB_SIZE = 384

#: What the BPE is trained on: chat, JSON and pythonic tool calls, so common pieces get merges.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello! How are you today? I am fine, thank you.",
    "What is the weather like in Paris, Oslo and Lima this week?",
    "You are a helpful assistant. Answer briefly and accurately.",
    'Call the tool: [get_weather(city="paris", days=3)]',
    '{"name": "get_weather", "parameters": {"city": "oslo", "days": 2}}',
    '[{"name": "get_time", "parameters": {"zone": "utc"}}]',
    "Functions are described as JSON schemas with type, properties and required fields.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2048.",
    "system user assistant ipython tool function arguments content role",
] * 20

CHAT_TEMPLATE = (
    "{{- bos_token -}}\n"
    "{%- macro text(content) -%}\n"
    "{%- if content is string -%}{{- content -}}\n"
    "{%- elif content -%}{%- for part in content -%}{%- if part.text is defined -%}{{- part.text -}}"
    "{%- endif -%}{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{%- endmacro -%}\n"
    "{%- if messages and messages[0].role == 'system' -%}\n"
    "{%- set system = text(messages[0].content) -%}\n"
    "{%- set rest = messages[1:] -%}\n"
    "{%- else -%}\n"
    "{%- set system = '' -%}\n"
    "{%- set rest = messages -%}\n"
    "{%- endif -%}\n"
    "{%- if system or tools -%}\n"
    "{{- '<|header_start|>system<|header_end|>\\n\\n' + system -}}\n"
    "{%- if tools -%}\n"
    "{{- '\\n\\nTo call functions, reply with only a Python list of calls, e.g. [name(arg=value)].\\n"
    "Functions:\\n' -}}\n"
    "{%- for tool in tools -%}\n"
    "{{- (tool.function if tool.function is defined else tool) | tojson -}}{{- '\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|eot|>' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in rest -%}\n"
    "{%- if message.role == 'assistant' and message.tool_calls -%}\n"
    "{{- '<|header_start|>assistant<|header_end|>\\n\\n' -}}\n"
    "{%- if message.content -%}{{- text(message.content) + '\\n' -}}{%- endif -%}\n"
    "{{- '[' -}}\n"
    "{%- for call in message.tool_calls -%}\n"
    "{%- set fn = call.function if call.function is defined else call -%}\n"
    "{{- fn.name + '(' -}}\n"
    "{%- if fn.arguments is mapping -%}\n"
    "{%- for key, value in fn.arguments.items() -%}"
    "{{- key + '=' + (value | tojson) -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}"
    "{%- endfor -%}\n"
    "{%- elif fn.arguments -%}{{- '**' + fn.arguments -}}\n"
    "{%- endif -%}\n"
    "{{- ')' -}}{%- if not loop.last -%}{{- ', ' -}}{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{{- ']<|eot|>' -}}\n"
    "{%- elif message.role == 'tool' or message.role == 'ipython' -%}\n"
    "{{- '<|header_start|>ipython<|header_end|>\\n\\n' + text(message.content) + '<|eot|>' -}}\n"
    "{%- else -%}\n"
    "{{- '<|header_start|>' + message.role + '<|header_end|>\\n\\n' + text(message.content) + '<|eot|>' -}}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|header_start|>assistant<|header_end|>\\n\\n' -}}{%- endif -%}\n"
)


def build_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def build_model(directory: str | Path) -> Path:
    """Write the model directory (idempotent: the same files each time) and return it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    tokenizer.save(str(out / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    bos, eos, eot, pad = (tokenizer.token_to_id(t) for t in (BOS, END_OF_TEXT, EOT, PAD))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": bos,
        "eos_token_id": [eot, eos],
        "pad_token_id": pad,
        "torch_dtype": "float32",
    }
    generation = {"bos_token_id": bos, "eos_token_id": [eot, eos], "pad_token_id": pad}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOT,
        "pad_token": PAD,
        "model_max_length": 4096,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    for name, payload in (
        ("config.json", config),
        ("generation_config.json", generation),
        ("tokenizer_config.json", tokenizer_config),
    ):
        (out / name).write_text(json.dumps(payload, indent=2) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: model.py OUTPUT_DIR")
    print(build_model(sys.argv[1]))
