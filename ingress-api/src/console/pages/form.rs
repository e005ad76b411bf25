//! A console form as shown again after a refusal: the values entered and
//! the API's messages, each beside its field.

use std::collections::BTreeMap;

use crate::console::layout::sentence;
use crate::error::ApiError;

/// One form as shown: what was entered per field, the API's refusal of
/// each field, and a refusal of no field (a conflict, say).
#[derive(Debug, Clone, Default)]
pub struct FormState {
    values: BTreeMap<&'static str, String>,
    errors: BTreeMap<&'static str, String>,
    /// Shown in the form's `role="alert"` paragraph.
    pub error: Option<String>,
}

impl FormState {
    /// A form with these values entered.
    pub fn with(values: &[(&'static str, &str)]) -> Self {
        FormState {
            values: values
                .iter()
                .map(|(field, value)| (*field, (*value).to_owned()))
                .collect(),
            ..FormState::default()
        }
    }

    /// What was entered in `field` (empty when nothing was).
    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    /// Enters `value` in `field` unless something is there already.
    pub fn fill_blank(&mut self, field: &'static str, value: &str) {
        let entry = self.values.entry(field).or_default();
        if entry.is_empty() {
            value.clone_into(entry);
        }
    }

    /// The refusal of `field`, if any.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    /// Places the API's refusal `err` in the form: each field error beside
    /// the form field `fields` maps its API name to, anything else and a
    /// conflict as the form's error. Answers false for other errors, which
    /// are not the form's to show but the problem page's.
    pub fn take_refusal(&mut self, err: &ApiError, fields: &[(&str, &'static str)]) -> bool {
        match err {
            ApiError::Validation(errors) => {
                let mut others = Vec::new();
                for error in errors {
                    match fields.iter().find(|(api, _)| *api == error.field) {
                        Some((_, field)) => {
                            self.errors.insert(field, error.message.clone());
                        }
                        None => others.push(format!("{} {}", error.field, error.message)),
                    }
                }
                if !others.is_empty() {
                    self.error = Some(sentence(&others.join("; ")));
                }
                true
            }
            ApiError::Conflict(_) => {
                self.error = Some(sentence(&err.public_detail()));
                true
            }
            _ => false,
        }
    }
}
