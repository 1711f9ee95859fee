//! `${VAR}` substitution in `engine.toml` string values (RPC URLs carry API keys).

use crate::redact::Secrets;
use toml::Value;

/// Replaces every `${NAME}` in the string values of `value` (recursively) using `lookup`.
/// `$$` stands for a literal `$`. Every value substituted is learned by `secrets`, so error
/// messages can be scrubbed of it. On a missing variable or a malformed reference, returns
/// the dotted field path and the reason.
pub(crate) fn substitute(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
) -> Result<(), (String, String)> {
    match value {
        Value::String(text) => {
            if text.contains('$') {
                let learn = |value: &str| secrets.add(value);
                *text = expand(text, lookup, learn).map_err(|reason| (path.to_string(), reason))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), lookup, secrets)?;
            }
            Ok(())
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                substitute(item, &child, lookup, secrets)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    mut learn: impl FnMut(&str),
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated `${`".to_string())?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable name"
                ));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
            learn(&value);
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cret".to_string())
    }

    #[test]
    fn replaces_variables_in_nested_strings() {
        let mut value: Value = toml::from_str(
            r#"
            [chains.1]
            rpc_url = "wss://node.example/${KEY}/x"
            other = ["$$5", "${KEY}"]
            "#,
        )
        .unwrap();
        let mut secrets = Secrets::default();
        substitute(&mut value, "", &env, &mut secrets).unwrap();
        assert_eq!(secrets.scrub("key s3cret!"), "key …!");
        assert_eq!(
            value["chains"]["1"]["rpc_url"].as_str(),
            Some("wss://node.example/s3cret/x")
        );
        assert_eq!(value["chains"]["1"]["other"][0].as_str(), Some("$5"));
        assert_eq!(value["chains"]["1"]["other"][1].as_str(), Some("s3cret"));
    }

    #[test]
    fn missing_variable_names_the_field() {
        let mut value: Value = toml::from_str("[chains.1]\nrpc_url = \"${NOPE}\"").unwrap();
        let (field, reason) =
            substitute(&mut value, "", &env, &mut Secrets::default()).unwrap_err();
        assert_eq!(field, "chains.1.rpc_url");
        assert_eq!(reason, "environment variable `NOPE` is not set");
    }

    #[test]
    fn malformed_references_are_errors() {
        let expand = |text| expand(text, &env, |_| {});
        assert!(expand("${KEY").unwrap_err().contains("unterminated"));
        assert!(expand("${1X}").unwrap_err().contains("not a valid"));
        assert_eq!(expand("cost: $5").unwrap(), "cost: $5");
    }
}
