//! The OpenAI-compatible requests a test sends a stack's frontend, and
//! their replies.

use std::time::Duration;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Method;
use serde_json::Value;

use crate::health::http_client::{Client, Request, Url};

/// Replies larger than this are an error (a test's completions are short).
const MAX_REPLY: usize = 4 << 20;

/// A frontend's answer to one request: its status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body (`Value::Null` if it was empty or not JSON; see `raw`).
    pub body: Value,
    /// The body as text.
    pub raw: String,
}

impl Reply {
    /// The first choice's text: `message.content` of a chat completion,
    /// `text` of a completion. `None` when absent or null (the mocker
    /// generates token ids, which a tiny model may decode to nothing).
    pub fn text(&self) -> Option<&str> {
        let choice = &self.body["choices"][0];
        choice["message"]["content"]
            .as_str()
            .or_else(|| choice["text"].as_str())
    }

    /// `usage.completion_tokens`: how many tokens were generated.
    pub fn completion_tokens(&self) -> Option<u64> {
        self.body["usage"]["completion_tokens"].as_u64()
    }

    /// The model that answered (`model`).
    pub fn model(&self) -> Option<&str> {
        self.body["model"].as_str()
    }

    /// The ids listed by `GET /v1/models` (`data[].id`).
    pub fn model_ids(&self) -> Vec<String> {
        self.body["data"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sends `method url` with an optional JSON body; an error says why no
/// answer came (not a non-200 status: that is in the reply).
pub(super) async fn send(
    method: Method,
    url: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Reply, String> {
    let mut request = Request::new(method, Url::parse(url)?);
    if let Some(body) = body {
        request.body = body.to_string().into();
        request
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let response = Client::new()
        .send(&request, timeout, MAX_REPLY)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let raw = response.text().map_err(|e| format!("{url}: {e}"))?;
    Ok(Reply {
        status: response.status.as_u16(),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(body: Value) -> Reply {
        Reply {
            status: 200,
            raw: body.to_string(),
            body,
        }
    }

    #[test]
    fn a_reply_reads_chat_and_completion_shapes() {
        let chat = reply(
            json!({"model": "tiny", "choices": [{"message": {"content": "hi"}}],
                                "usage": {"completion_tokens": 4}}),
        );
        assert_eq!(chat.text(), Some("hi"));
        assert_eq!(chat.completion_tokens(), Some(4));
        assert_eq!(chat.model(), Some("tiny"));
        let completion = reply(json!({"choices": [{"text": "yo"}]}));
        assert_eq!(completion.text(), Some("yo"));
        let null_content = reply(json!({"choices": [{"message": {"content": null}}]}));
        assert_eq!(null_content.text(), None);
        let models = reply(json!({"data": [{"id": "a"}, {"id": "b"}]}));
        assert_eq!(models.model_ids(), ["a", "b"]);
    }
}
