//! A tiny model that Dynamo's mocker and frontend accept, made from files
//! alone: no weights, no model hub (the machines tests run on are often
//! offline).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::Error;

/// Words of the tiny model's vocabulary after the three special tokens;
/// `w0`..`w{FILLER-1}` fill it up to a realistic size.
const WORDS: &[&str] = &[
    "hello", "world", "the", "a", "is", "of", "and", "to", "in", "you", "how", "are", "what",
    "dynamo", "test", "ping", "model", "token",
];
const FILLER: usize = 240;

/// Writes a tiny tokenizer-only model into `dir` (created if needed) and
/// returns `dir`: a word-level `tokenizer.json` (whitespace split, `<unk>`,
/// `<s>`, `</s>`), a llama-style `config.json`, a `tokenizer_config.json`
/// with a chat template, and a `generation_config.json`. Serve it with the
/// mocker ([`StackBuilder::mocker`](super::StackBuilder::mocker)).
///
/// ```no_run
/// # fn doc(ctx: &dynamo_test::TestContext) -> Result<(), dynamo_test::Error> {
/// let model = dynamo_test::dynamo::tiny_model(ctx.output_dir().join("tiny"))?;
/// # Ok(()) }
/// ```
pub fn tiny_model(dir: impl AsRef<Path>) -> Result<PathBuf, Error> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating the model dir {}", dir.display()), e))?;
    for (name, content) in files() {
        let path = dir.join(name);
        // A `Value` always serializes; its `Display` is its JSON text.
        std::fs::write(&path, content.to_string())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(dir.to_path_buf())
}

fn vocabulary() -> Vec<String> {
    let special = ["<unk>", "<s>", "</s>"].map(String::from);
    let words = WORDS.iter().map(|w| w.to_string());
    let filler = (0..FILLER).map(|i| format!("w{i}"));
    special.into_iter().chain(words).chain(filler).collect()
}

fn files() -> [(&'static str, Value); 4] {
    let vocab = vocabulary();
    [
        ("tokenizer.json", tokenizer(&vocab)),
        ("config.json", config(vocab.len())),
        ("tokenizer_config.json", tokenizer_config()),
        (
            "generation_config.json",
            json!({"bos_token_id": 1, "eos_token_id": 2}),
        ),
    ]
}

/// The `tokenizers` library's JSON for a WordLevel model.
fn tokenizer(vocab: &[String]) -> Value {
    let ids: Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(id, word)| (word.clone(), json!(id)))
        .collect();
    let added: Vec<Value> = vocab[..3]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            json!({"id": id, "content": token, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": ids, "unk_token": "<unk>"},
    })
}

fn config(vocab_size: usize) -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128,
        "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2,
        "max_position_embeddings": 2048, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "float16",
    })
}

fn tokenizer_config() -> Value {
    json!({
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "model_max_length": 2048, "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}\
                          {% if add_generation_prompt %}assistant:{% endif %}",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_files_are_consistent() {
        let dir = std::env::temp_dir().join(format!("dynamo-test-tiny-{}", std::process::id()));
        tiny_model(&dir).unwrap();
        let read = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
        };
        let tokenizer = read("tokenizer.json");
        let vocab = tokenizer["model"]["vocab"].as_object().unwrap();
        assert_eq!(read("config.json")["vocab_size"], vocab.len());
        assert_eq!(vocab["<s>"], 1);
        assert_eq!(
            vocab["</s>"],
            read("generation_config.json")["eos_token_id"]
        );
        assert!(read("tokenizer_config.json")["chat_template"]
            .as_str()
            .unwrap()
            .contains("add_generation_prompt"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_dir_is_an_error_naming_it() {
        let err = tiny_model("/proc/dynamo-test-tiny")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/proc/dynamo-test-tiny"), "{err}");
    }
}
