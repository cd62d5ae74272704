//! A small mock OpenAI-compatible model server.
//!
//! It stands in for the user's LLM application in tests and examples: it
//! answers the same endpoints as NVIDIA Dynamo's HTTP frontend (`/health`,
//! `/v1/models`, `/v1/chat/completions`) with deterministic responses, and can
//! simulate a slow model load or a permanently failing health check.
//!
//! Use [`serve`](crate::mock_server::serve) to run it in-process on a listener you bound yourself, or the
//! `mock_model_server` binary to run it as a separate process.

use std::future::IntoFuture;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The model name served when no model is configured explicitly.
pub const DEFAULT_MODEL: &str = "mock-model";

/// The endpoint reported by `/health`, mimicking a Dynamo backend component.
const HEALTH_ENDPOINT: &str = "dyn://mock.backend.generate";

/// How the mock server behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockServerConfig {
    /// Model names the server serves (listed by `/v1/models`, accepted by
    /// `/v1/chat/completions`).
    pub models: Vec<String>,
    /// Time after start-up before the models count as loaded. Until then
    /// `/health` answers 503, `/v1/models` is empty and completions get 503.
    pub startup_delay: Duration,
    /// When set, `/health` answers 503 forever (the models still load, so
    /// the other endpoints work normally).
    pub fail_health: bool,
}

impl Default for MockServerConfig {
    /// One model named [`DEFAULT_MODEL`], loaded at once, healthy.
    fn default() -> Self {
        Self {
            models: vec![DEFAULT_MODEL.to_string()],
            startup_delay: Duration::ZERO,
            fail_health: false,
        }
    }
}

/// Shared state behind every handler.
struct AppState {
    config: MockServerConfig,
    /// The models count as loaded from this instant on. Deriving "loaded"
    /// from the clock (rather than a flag flipped by a task) keeps `router`
    /// usable outside a Tokio runtime and avoids any flip-vs-request race.
    ready_at: Instant,
    /// Unix seconds at start-up, reported as the models' `created` time.
    started_unix: u64,
    /// Source of deterministic completion ids (`chatcmpl-mock-1`, `-2`, ...).
    next_id: AtomicU64,
}

impl AppState {
    fn is_loaded(&self) -> bool {
        Instant::now() >= self.ready_at
    }

    fn serves_model(&self, name: &str) -> bool {
        self.config.models.iter().any(|model| model == name)
    }
}

type SharedState = Arc<AppState>;

/// Builds the axum router for the mock server.
///
/// The startup-delay clock starts when this function is called. The router
/// does not print the `models loaded` line; [`serve`] does.
pub fn router(config: MockServerConfig) -> Router {
    let state = Arc::new(AppState {
        ready_at: Instant::now() + config.startup_delay,
        started_unix: unix_now(),
        next_id: AtomicU64::new(1),
        config,
    });
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(list_models))
        .route("/v1/chat/completions", post(chat_completions))
        .fallback(unknown_route)
        .with_state(state)
}

/// Serves the mock model server on `listener` until the returned future is
/// dropped (axum retries failed accepts, so in practice it does not return).
///
/// Once the startup delay has elapsed it prints `models loaded: a, b` to
/// stdout (and flushes), so tests that scrape logs can wait for that line; the
/// line is printed only after the server already reports itself as loaded.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: MockServerConfig,
) -> std::io::Result<()> {
    let startup_delay = config.startup_delay;
    let loaded_line = format!("models loaded: {}", config.models.join(", "));
    let app = router(config);

    let announce = async move {
        tokio::time::sleep(startup_delay).await;
        print_line(&loaded_line);
    };
    // Joined rather than spawned, so dropping `serve` also cancels the
    // announcement instead of leaving a detached task behind.
    let (result, ()) = tokio::join!(axum::serve(listener, app).into_future(), announce);
    result
}

/// Prints one line to stdout and flushes it right away, since tests read the
/// output of a child process whose stdout is a pipe (block-buffered).
pub fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not take the server down; the line is only a log.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

async fn health(State(state): State<SharedState>) -> Response {
    if state.config.fail_health {
        let body = json!({"status": "not_ready", "reason": "health check forced to fail"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    if !state.is_loaded() {
        let body = json!({"status": "not_ready", "reason": "models loading"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let instances: Vec<Value> = state
        .config
        .models
        .iter()
        .map(|model| json!({"model": model}))
        .collect();
    let body = json!({"status": "healthy", "endpoints": [HEALTH_ENDPOINT], "instances": instances});
    (StatusCode::OK, Json(body)).into_response()
}

async fn list_models(State(state): State<SharedState>) -> Json<Value> {
    // Like Dynamo, models only appear once they are registered (loaded).
    let data: Vec<Value> = if state.is_loaded() {
        let created = state.started_unix;
        state
            .config
            .models
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "dynamo-test"}))
            .collect()
    } else {
        Vec::new()
    };
    Json(json!({"object": "list", "data": data}))
}

async fn chat_completions(State(state): State<SharedState>, body: Bytes) -> Response {
    // The body is parsed by hand (not with axum's `Json` extractor) so every
    // failure gets an OpenAI-style error object and a plain 400.
    let request = match ChatRequest::parse(&body) {
        Ok(request) => request,
        Err(message) => {
            return openai_error(
                StatusCode::BAD_REQUEST,
                &message,
                "invalid_request_error",
                "invalid_request",
            )
        }
    };
    if !state.serves_model(&request.model) {
        let message = format!("The model `{}` does not exist", request.model);
        return openai_error(
            StatusCode::NOT_FOUND,
            &message,
            "invalid_request_error",
            "model_not_found",
        );
    }
    if !state.is_loaded() {
        let message = format!("The model `{}` is still loading", request.model);
        return openai_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &message,
            "service_unavailable",
            "model_not_ready",
        );
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, Json(completion_body(id, &request))).into_response()
}

async fn unknown_route(method: Method, uri: Uri) -> Response {
    let message = format!("No route for {method} {}", uri.path());
    openai_error(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        "not_found",
    )
}

/// An OpenAI-style error response: `{"error":{"message","type","code"}}`.
fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": code}});
    (status, Json(body)).into_response()
}

// ---------------------------------------------------------------------------
// Chat completion logic (pure functions, no I/O)
// ---------------------------------------------------------------------------

/// The parts of a chat completion request the mock looks at.
#[derive(Debug)]
struct ChatRequest {
    model: String,
    messages: Vec<Value>,
}

impl ChatRequest {
    /// Parses and validates a request body; the error is a client-facing message.
    fn parse(body: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(body).map_err(|err| format!("Invalid JSON body: {err}"))?;
        let model = value
            .get("model")
            .and_then(Value::as_str)
            .ok_or("Missing required string field `model`")?
            .to_string();
        let messages = value
            .get("messages")
            .and_then(Value::as_array)
            .filter(|messages| !messages.is_empty())
            .ok_or("Missing required non-empty array field `messages`")?
            .clone();
        // Refuse rather than silently answer without SSE: a streaming client
        // would otherwise fail with a confusing parse error.
        if value.get("stream").and_then(Value::as_bool) == Some(true) {
            return Err("Streaming is not supported by the mock model server".to_string());
        }
        Ok(Self { model, messages })
    }

    /// Content of the last message with role `user` (empty if there is none).
    fn last_user_content(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
            .map(message_text)
            .unwrap_or_default()
    }

    /// Whitespace-separated words over all message contents: a stand-in for
    /// a tokenizer that is deterministic and easy to assert on.
    fn prompt_words(&self) -> usize {
        self.messages
            .iter()
            .map(|message| word_count(&message_text(message)))
            .sum()
    }
}

/// Text of a message's `content`, which is either a string or (in newer
/// OpenAI clients) an array of parts like `{"type":"text","text":"..."}`.
fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn completion_body(id: u64, request: &ChatRequest) -> Value {
    let reply = format!("echo: {}", request.last_user_content());
    let prompt_tokens = request.prompt_words();
    let completion_tokens = word_count(&reply);
    json!({
        "id": format!("chatcmpl-mock-{id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use reqwest::Method;
    use tokio::net::TcpListener;

    use super::*;

    /// Starts the server in-process on an ephemeral port.
    async fn start(config: MockServerConfig) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, config));
        addr
    }

    /// One request with a JSON body: the status and the JSON reply (`Null`
    /// if the reply is not JSON).
    async fn request(addr: SocketAddr, method: Method, path: &str, body: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let json = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        (status, json)
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
        request(addr, Method::GET, path, "").await
    }

    async fn chat(addr: SocketAddr, body: Value) -> (u16, Value) {
        request(
            addr,
            Method::POST,
            "/v1/chat/completions",
            &body.to_string(),
        )
        .await
    }

    fn config(models: &[&str], startup_delay: Duration) -> MockServerConfig {
        let models = models.iter().map(|model| model.to_string()).collect();
        MockServerConfig {
            models,
            startup_delay,
            fail_health: false,
        }
    }

    #[tokio::test]
    async fn health_and_models_follow_loading() {
        let addr = start(config(&["a", "b"], Duration::from_millis(300))).await;

        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 503);
        assert_eq!(
            body,
            json!({"status": "not_ready", "reason": "models loading"})
        );
        let (status, body) = get(addr, "/v1/models").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"object": "list", "data": []}));
        let (status, _) = chat(
            addr,
            json!({"model": "a", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, 503);

        tokio::time::sleep(Duration::from_millis(400)).await;

        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["endpoints"], json!(["dyn://mock.backend.generate"]));
        assert_eq!(body["instances"], json!([{"model": "a"}, {"model": "b"}]));
        let (_, body) = get(addr, "/v1/models").await;
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(body["data"][0]["object"], "model");
        assert_eq!(body["data"][0]["owned_by"], "dynamo-test");
        assert!(body["data"][0]["created"].as_u64().unwrap() > 0);
    }

    #[tokio::test]
    async fn chat_completion_echoes_last_user_message() {
        let addr = start(MockServerConfig::default()).await;
        let messages = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
        ]);

        let (status, body) = chat(addr, json!({"model": "mock-model", "messages": messages})).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], "chatcmpl-mock-1");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], "mock-model");
        assert_eq!(
            body["choices"][0]["message"],
            json!({"role": "assistant", "content": "echo: hello there"})
        );
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        // 2 + 2 + 1 + 2 prompt words; "echo: hello there" is 3 words.
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
        );

        let (_, body) = chat(addr, json!({"model": "mock-model", "messages": messages})).await;
        assert_eq!(body["id"], "chatcmpl-mock-2");
    }

    #[tokio::test]
    async fn chat_completion_errors() {
        let addr = start(MockServerConfig::default()).await;

        let (status, body) = chat(
            addr,
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "model_not_found");

        let (status, body) = request(addr, Method::POST, "/v1/chat/completions", "{not json").await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");

        let (status, _) = chat(addr, json!({"model": "mock-model"})).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn fail_health_stays_unhealthy_but_serves() {
        let config = MockServerConfig {
            fail_health: true,
            ..MockServerConfig::default()
        };
        let addr = start(config).await;

        let (status, body) = get(addr, "/health").await;
        assert_eq!(status, 503);
        assert_eq!(body["status"], "not_ready");
        let (status, _) = chat(
            addr,
            json!({"model": "mock-model", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        assert_eq!(status, 200);
    }
}
