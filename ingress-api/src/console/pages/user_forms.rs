//! The users page's forms, each through the same function as its JSON
//! handler: `POST /console/users` creates an account as `POST /users` does,
//! `POST /console/users/{id}/role` and `POST /console/users/{id}/active`
//! change it as `PATCH /users/{id}` does. Success is a 303 back to the page,
//! which then says what changed; a refusal shows the page again with the
//! API's message beside the field, or as the form's error; 403 without the
//! CSRF token.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orderflow_core::domain::Role;
use serde::Deserialize;
use uuid::Uuid;

use crate::console::layout::sentence;
use crate::console::pages::users::{self, CreateForm, PageState, RowRefusal};
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::ApiError;
use crate::http::users::UserDetail;
use crate::http::users_admin::{self, NewUser, UserChange};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct CreateInput {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/users`: creates an account.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    input: Result<Form<CreateInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let new = NewUser {
        email: input.email.clone(),
        password: input.password,
        role: input.role.clone(),
    };
    let err = match users_admin::create_account(&state, &user.auth, new).await {
        Ok(created) => return back(&state, None, &Flash::created(created)),
        Err(err) => err,
    };
    let mut form = CreateForm {
        email: input.email,
        role: input.role,
        ..CreateForm::default()
    };
    match &err {
        ApiError::Validation(errors) => {
            let mut others = Vec::new();
            for error in errors {
                let message = Some(error.message.clone());
                match error.field.as_str() {
                    "email" => form.email_error = message,
                    "password" => form.password_error = message,
                    "role" => form.role_error = message,
                    _ => others.push(format!("{} {}", error.field, error.message)),
                }
            }
            if !others.is_empty() {
                form.error = Some(sentence(&others.join("; ")));
            }
        }
        // The only conflict of a new account is its email being taken.
        ApiError::Conflict(_) => form.email_error = Some(err.public_detail()),
        _ => return problem::page(Some(&user), &err),
    }
    let shown = PageState {
        create: form,
        ..PageState::default()
    };
    users::page(&state, &user, err.status(), shown).await
}

#[derive(Debug, Default, Deserialize)]
pub struct RoleInput {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub csrf: String,
    /// The page of the users list the form was on.
    pub cursor: Option<String>,
}

/// `POST /console/users/{id}/role`: gives an account another role.
pub async fn change_role(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    input: Result<Form<RoleInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let change = UserChange {
        role: Some(input.role.clone()),
        active: None,
    };
    let err = match users_admin::change_user(&state, &user.auth, &id, change).await {
        Ok(changed) => return back(&state, input.cursor, &Flash::role_changed(changed)),
        Err(err) => err,
    };
    let mut refusal = RowRefusal {
        role_value: Some(input.role),
        ..RowRefusal::default()
    };
    match &err {
        ApiError::Validation(errors) => {
            for error in errors {
                if error.field == "role" {
                    refusal.role_field = Some(error.message.clone());
                } else {
                    refusal.role = Some(sentence(&format!("{} {}", error.field, error.message)));
                }
            }
        }
        ApiError::Conflict(_) => refusal.role = Some(sentence(&err.public_detail())),
        _ => return problem::page(Some(&user), &err),
    }
    refused_row(&state, &user, &err, &id, input.cursor, refusal).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ActiveInput {
    /// `true` reactivates the account, `false` deactivates it.
    #[serde(default)]
    pub active: String,
    #[serde(default)]
    pub csrf: String,
    /// The page of the users list the form was on.
    pub cursor: Option<String>,
}

/// `POST /console/users/{id}/active`: deactivates or reactivates an account.
pub async fn set_active(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    input: Result<Form<ActiveInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match input.active.as_str() {
        "true" | "false" => {
            let change = UserChange {
                role: None,
                active: Some(input.active == "true"),
            };
            users_admin::change_user(&state, &user.auth, &id, change).await
        }
        // The form's hidden field only ever says true or false.
        _ => Err(ApiError::field("active", "must be true or false")),
    };
    let err = match result {
        Ok(changed) => {
            let flash = if changed.active {
                Flash::reactivated(changed)
            } else {
                Flash::deactivated(changed)
            };
            return back(&state, input.cursor, &flash);
        }
        Err(err) => err,
    };
    let refusal = match &err {
        ApiError::Validation(_) | ApiError::Conflict(_) => RowRefusal {
            active: Some(sentence(&err.public_detail())),
            ..RowRefusal::default()
        },
        _ => return problem::page(Some(&user), &err),
    };
    refused_row(&state, &user, &err, &id, input.cursor, refusal).await
}

/// The users page again with `refusal` shown in the row of account `id`.
async fn refused_row(
    state: &AppState,
    user: &ConsoleUser,
    err: &ApiError,
    id: &str,
    cursor: Option<String>,
    refusal: RowRefusal,
) -> Response {
    // A refused change was made to a listed account, whose id parsed.
    let row_refusal = Uuid::parse_str(id).ok().map(|id| (id, refusal));
    let shown = PageState {
        cursor,
        row_refusal,
        ..PageState::default()
    };
    users::page(state, user, err.status(), shown).await
}

/// The 303 back to the users page (the page of `cursor`), carrying `flash`.
fn back(state: &AppState, cursor: Option<String>, flash: &Flash) -> Response {
    let location = match cursor.filter(|cursor| !cursor.is_empty()) {
        None => "/console/users".to_owned(),
        Some(cursor) => format!(
            "/console/users?{}",
            serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
        ),
    };
    let mut response = Redirect::to(&location).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(state, Flash::COOKIE, &flash.encode(), 60),
    );
    response
}

/// What a form of the users page just did, carried across the redirect in
/// a cookie and shown once. The email is hex-encoded, since an email may
/// hold characters a cookie may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    Created { email: String, role: Role },
    RoleChanged { email: String, role: Role },
    Deactivated { email: String },
    Reactivated { email: String },
}

impl Flash {
    pub const COOKIE: &'static str = "orderflow_users_flash";

    fn created(user: UserDetail) -> Self {
        Flash::Created {
            email: user.email,
            role: user.role,
        }
    }

    fn role_changed(user: UserDetail) -> Self {
        Flash::RoleChanged {
            email: user.email,
            role: user.role,
        }
    }

    fn deactivated(user: UserDetail) -> Self {
        Flash::Deactivated { email: user.email }
    }

    fn reactivated(user: UserDetail) -> Self {
        Flash::Reactivated { email: user.email }
    }
}

impl Flash {
    /// `<what>.<role>.<hex email>`, or `<what>.<hex email>` without a role.
    fn encode(&self) -> String {
        match self {
            Flash::Created { email, role } => {
                format!("created.{}.{}", role.as_str(), hex::encode(email))
            }
            Flash::RoleChanged { email, role } => {
                format!("role.{}.{}", role.as_str(), hex::encode(email))
            }
            Flash::Deactivated { email } => format!("deactivated.{}", hex::encode(email)),
            Flash::Reactivated { email } => format!("reactivated.{}", hex::encode(email)),
        }
    }

    /// The flash in a cookie value; anything else (a tampered cookie) is
    /// ignored rather than shown.
    pub fn decode(value: &str) -> Option<Self> {
        let email = |hexed: &str| String::from_utf8(hex::decode(hexed).ok()?).ok();
        let role = |raw: &str| Role::parse(raw).ok();
        let parts: Vec<&str> = value.split('.').collect();
        match parts.as_slice() {
            ["created", r, e] => Some(Flash::Created {
                email: email(e)?,
                role: role(r)?,
            }),
            ["role", r, e] => Some(Flash::RoleChanged {
                email: email(e)?,
                role: role(r)?,
            }),
            ["deactivated", e] => Some(Flash::Deactivated { email: email(e)? }),
            ["reactivated", e] => Some(Flash::Reactivated { email: email(e)? }),
            _ => None,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Flash::Created { email, role } => format!("Created {email} as {}.", role.as_str()),
            Flash::RoleChanged { email, role } => format!("{email} is now {}.", role.as_str()),
            Flash::Deactivated { email } => {
                format!("Deactivated {email}; their sessions are signed out.")
            }
            Flash::Reactivated { email } => format!("Reactivated {email}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_survives_its_cookie_and_a_tampered_one_is_dropped() {
        for flash in [
            Flash::Created {
                email: "a;b@example.com".into(),
                role: Role::Manager,
            },
            Flash::RoleChanged {
                email: "c@example.com".into(),
                role: Role::Admin,
            },
            Flash::Deactivated {
                email: "d@example.com".into(),
            },
            Flash::Reactivated {
                email: "e@example.com".into(),
            },
        ] {
            assert_eq!(Flash::decode(&flash.encode()), Some(flash));
        }
        assert_eq!(Flash::decode("created.root.6162"), None);
        assert_eq!(Flash::decode("created.staff.zz"), None);
        assert_eq!(Flash::decode("deleted.6162"), None);
        assert_eq!(Flash::decode(""), None);
    }
}
