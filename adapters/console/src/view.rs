//! How a console page looks: the document around every page (navigation, sign-out, what is being read) and
//! the refusal page. Escaping is by construction (`maud`); nothing here reads a session or a store.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// A page being built.
pub(crate) struct Page<'a> {
    title: &'a str,
    /// The signed-in user and the session's CSRF token.
    viewer: Option<(&'a str, &'a str)>,
    source: Option<&'a str>,
    body: Markup,
}

impl<'a> Page<'a> {
    /// A page for anyone (sign-in, refusals).
    pub(crate) fn public(title: &'a str) -> Self {
        Self {
            title,
            viewer: None,
            source: None,
            body: html! {},
        }
    }

    /// A page for a signed-in viewer `(user, CSRF token)`, reading `source`.
    pub(crate) fn signed_in(title: &'a str, viewer: (&'a str, &'a str), source: &'a str) -> Self {
        Self {
            title,
            viewer: Some(viewer),
            source: Some(source),
            body: html! {},
        }
    }

    pub(crate) fn body(mut self, body: Markup) -> Self {
        self.body = body;
        self
    }

    fn render(self) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " — Causeway console" }
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header {
                        span.brand { "Causeway console" }
                        @if let Some((user, csrf)) = self.viewer {
                            nav aria-label="Console" {
                                a href="/console" { "Search" }
                                a href="/console/dashboards" { "Dashboards" }
                                a href="/console/integrity" { "Integrity" }
                                a href="/console/export" { "Export" }
                            }
                            form.signout method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                span { "Signed in as " strong { (user) } }
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main id="main" {
                        h1 { (self.title) }
                        @if let Some(source) = self.source {
                            p.source { "Reading " (source) }
                        }
                        (self.body)
                    }
                }
            }
        }
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        Html(self.render().into_string()).into_response()
    }
}

/// A page that says what went wrong and what to do.
pub(crate) fn refusal(status: StatusCode, title: &str, message: &str) -> Response {
    (
        status,
        Page::public(title).body(html! {
            p.error role="alert" { (message) }
            p { a href="/console" { "Back to the console" } }
        }),
    )
        .into_response()
}

/// The development sign-in form.
pub(crate) fn development_login(reviewer_groups: &[String]) -> Markup {
    html! {
        p { "This hub runs in development identity mode: name the user and groups to sign in as. A production hub signs reviewers in through the organisation's identity provider." }
        form method="post" action="/console/login" {
            div.field { label for="user" { "User" } input id="user" name="user" required autocomplete="username"; }
            div.field { label for="groups" { "Groups (comma-separated)" } input id="groups" name="groups" value=(reviewer_groups.first().cloned().unwrap_or_default()); }
            button type="submit" { "Sign in" }
        }
    }
}
