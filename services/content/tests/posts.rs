//! Posts, comments, replies and likes through HTTP, with real auth.
#![allow(clippy::unwrap_used)]

mod common;

use common::spawn;
use reqwest::Method;
use serde_json::{Value, json};
use test_harness::platform::assert_json_error;

#[tokio::test]
async fn posts_are_created_read_edited_with_history_and_soft_deleted_by_their_author_only() {
    let stack = spawn(&[]).await;
    let (author, other) = (stack.token(11).await, stack.token(12).await);
    let post = stack.create_post(&author, "  첫 글입니다  ").await;
    let id = post["id"].as_i64().unwrap();
    assert_eq!(
        (
            post["body"].as_str(),
            post["author_id"].as_i64(),
            post["version"].as_i64()
        ),
        (Some("첫 글입니다"), Some(11), Some(1))
    );

    let path = format!("/api/v1/posts/{id}");
    let res = stack
        .send(
            Method::PATCH,
            &path,
            Some(&other),
            Some(json!({"body": "hijacked"})),
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_json_error(res, "forbidden").await;
    let res = stack
        .send(
            Method::PATCH,
            &path,
            Some(&author),
            Some(json!({"body": "고친 글", "title": "제목"})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(
        (
            edited["version"].as_i64(),
            edited["edited"].as_bool(),
            edited["title"].as_str()
        ),
        (Some(2), Some(true), Some("제목"))
    );
    let history: Value = stack
        .send(Method::GET, &format!("{path}/history"), None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["body"], "첫 글입니다");
    let viewed: Value = stack
        .send(Method::GET, &path, Some(&other), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(viewed["liked"], false);

    assert_eq!(
        stack
            .send(Method::DELETE, &path, Some(&other), None)
            .await
            .status(),
        403
    );
    assert_eq!(
        stack
            .send(Method::DELETE, &path, Some(&author), None)
            .await
            .status(),
        204
    );
    for (method, p) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/history")),
        (Method::PUT, format!("{path}/like")),
    ] {
        let res = stack
            .send(
                method.clone(),
                &p,
                Some(&author),
                Some(json!({"body": "x"})),
            )
            .await;
        assert_eq!(res.status(), 404, "{method} {p} on a deleted post");
    }
    stack.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_answers_and_writes_nothing() {
    let stack = spawn(&[]).await;
    let token = stack.token(21).await;
    let res = stack
        .send(
            Method::POST,
            "/api/v1/posts",
            None,
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = stack
        .send(
            Method::POST,
            "/api/v1/posts",
            Some("not-a-token"),
            Some(json!({"body": "x"})),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_json_error(res, "invalid_token").await;

    let res = stack
        .send(
            Method::POST,
            "/api/v1/posts",
            Some(&token),
            Some(json!({"body": "가".repeat(10_001)})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body = assert_json_error(res, "validation_failed").await;
    assert!(
        body["message"].as_str().unwrap().contains("10000"),
        "{body}"
    );
    let huge = json!({"body": "x".repeat(2 * 1024 * 1024)});
    let res = stack
        .send(Method::POST, "/api/v1/posts", Some(&token), Some(huge))
        .await;
    assert_eq!(res.status(), 413);
    assert_json_error(res, "payload_too_large").await;
    for raw in [&b"{\"body\": "[..], &b"\xff\xfe\xfd"[..]] {
        let res = stack
            .client
            .post(stack.url("/api/v1/posts"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_json_error(res, "malformed_json").await;
    }
    for bad in [
        json!({"body": "x", "author_id": 1}),
        json!({"body": 5}),
        json!({"body": "x", "image_ids": ["../etc"]}),
        json!({"body": "   "}),
    ] {
        let res = stack
            .send(
                Method::POST,
                "/api/v1/posts",
                Some(&token),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(res.status(), 422, "{bad}");
    }
    for path in [
        "/api/v1/posts/abc",
        "/api/v1/posts/0",
        "/api/v1/posts/-1",
        "/api/v1/posts/99999999999999999999",
    ] {
        assert_eq!(
            stack.send(Method::GET, path, None, None).await.status(),
            400,
            "{path}"
        );
    }
    assert_eq!(
        stack
            .send(Method::GET, "/api/v1/posts/123456789", None, None)
            .await
            .status(),
        404
    );
    let res = stack
        .send(
            Method::GET,
            "/api/v1/posts?author=21&cursor=eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
            None,
            None,
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        stack
            .send(Method::GET, "/api/v1/posts?author=x", None, None)
            .await
            .status(),
        400
    );
    let mine: Value = stack
        .send(Method::GET, "/api/v1/posts?author=21", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        mine["items"].as_array().unwrap().is_empty(),
        "no rejected request left a post"
    );
    stack.stop().await;
}

#[tokio::test]
async fn comments_and_one_level_of_replies_page_oldest_first() {
    let stack = spawn(&[]).await;
    let (author, reader) = (stack.token(31).await, stack.token(32).await);
    let post = stack.create_post(&author, "comment on me").await;
    let id = post["id"].as_i64().unwrap();
    let comment = |body: &str, parent: Option<i64>| {
        let stack = &stack;
        let reader = reader.clone();
        let body = json!({"body": body, "parent_id": parent});
        async move {
            stack
                .send(
                    Method::POST,
                    &format!("/api/v1/posts/{id}/comments"),
                    Some(&reader),
                    Some(body),
                )
                .await
        }
    };
    let mut top = Vec::new();
    for i in 0..5 {
        let res = comment(&format!("comment {i}"), None).await;
        assert_eq!(res.status(), 201);
        top.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let reply: Value = comment("a reply", Some(top[0])).await.json().await.unwrap();
    let res = comment("reply to a reply", Some(reply["id"].as_i64().unwrap())).await;
    assert_eq!(res.status(), 422);
    let other = stack.create_post(&author, "another post").await;
    let foreign: Value = stack
        .send(
            Method::POST,
            &format!("/api/v1/posts/{}/comments", other["id"]),
            Some(&reader),
            Some(json!({"body": "elsewhere"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        comment("cross-post reply", Some(foreign["id"].as_i64().unwrap()))
            .await
            .status(),
        404
    );

    // Page through the top level, two at a time, oldest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = stack
            .send(
                Method::GET,
                &format!("/api/v1/posts/{id}/comments?limit=2&cursor={cursor}"),
                None,
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, top);

    // Deleting: a comment with replies stays as "deleted" and keeps them; one without goes.
    assert_eq!(
        stack
            .send(
                Method::DELETE,
                &format!("/api/v1/comments/{}", top[0]),
                Some(&author),
                None
            )
            .await
            .status(),
        403
    );
    for c in [top[0], top[1]] {
        assert_eq!(
            stack
                .send(
                    Method::DELETE,
                    &format!("/api/v1/comments/{c}"),
                    Some(&reader),
                    None
                )
                .await
                .status(),
            204
        );
    }
    let page: Value = stack
        .send(
            Method::GET,
            &format!("/api/v1/posts/{id}/comments"),
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(
        (
            items[0]["deleted"].as_bool(),
            items[0]["body"].is_null(),
            items[0]["reply_count"].as_i64()
        ),
        (Some(true), true, Some(1))
    );
    let replies: Value = stack
        .send(
            Method::GET,
            &format!("/api/v1/comments/{}/replies", top[0]),
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replies["items"][0]["body"], "a reply");
    let post: Value = stack
        .send(Method::GET, &format!("/api/v1/posts/{id}"), None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["comment_count"], 4, "5 comments + 1 reply - 2 deleted");
    let res = stack
        .send(
            Method::PATCH,
            &format!("/api/v1/comments/{}", top[2]),
            Some(&reader),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap()["body"], "edited");
    stack.stop().await;
}

#[tokio::test]
async fn likes_are_idempotent_and_counted_right_under_concurrency() {
    let stack = spawn(&[]).await;
    let author = stack.token(41).await;
    let post = stack.create_post(&author, "like me").await;
    let id = post["id"].as_i64().unwrap();
    let like_path = format!("/api/v1/posts/{id}/like");

    // One member, twenty racing likes: one like.
    let fan = stack.token(42).await;
    let racing = (0..20).map(|_| stack.send(Method::PUT, &like_path, Some(&fan), None));
    for res in futures_util::future::join_all(racing).await {
        assert_eq!(res.status(), 200);
    }
    let state: Value = stack
        .send(
            Method::GET,
            &format!("/api/v1/posts/{id}"),
            Some(&fan),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (state["like_count"].as_i64(), state["liked"].as_bool()),
        (Some(1), Some(true))
    );

    // A hundred members at once: a hundred likes.
    let mut tokens = Vec::new();
    for member in 1000..1100 {
        tokens.push(stack.token(member).await);
    }
    let all = tokens
        .iter()
        .map(|t| stack.send(Method::PUT, &like_path, Some(t), None));
    futures_util::future::join_all(all).await;
    let state: Value = stack
        .send(Method::GET, &format!("/api/v1/posts/{id}"), None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(state["like_count"], 101);

    // Cancel twice: one cancel.
    for _ in 0..2 {
        let res: Value = stack
            .send(Method::DELETE, &like_path, Some(&fan), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(res, json!({"liked": false, "like_count": 100}));
    }
    // Comment likes behave the same.
    let comment: Value = stack
        .send(
            Method::POST,
            &format!("/api/v1/posts/{id}/comments"),
            Some(&fan),
            Some(json!({"body": "nice"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let comment_like = format!("/api/v1/comments/{}/like", comment["id"]);
    for _ in 0..3 {
        stack
            .send(Method::PUT, &comment_like, Some(&author), None)
            .await;
    }
    let res: Value = stack
        .send(Method::PUT, &comment_like, Some(&fan), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["like_count"], 2);
    stack.stop().await;
}
