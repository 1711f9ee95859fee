//! Flattening a manifest's `[config]` table into the `config` list modules receive.

use toml::Value;

/// The `[config]` table as `(key, text)` pairs, sorted by key: strings verbatim, other
/// scalars as their TOML text, arrays and tables as JSON.
pub fn flatten_config(table: &toml::Table) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(key, value)| (key.clone(), config_text(value)))
        .collect()
}

fn config_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => value_float_text(*f),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(_) | Value::Table(_) => to_json(value).to_string(),
    }
}

fn value_float_text(f: f64) -> String {
    // TOML spells the specials `inf`, `-inf` and `nan`.
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        Value::Float(f).to_string()
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(value_float_text(*f))),
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Table(table) => {
            serde_json::Value::Object(table.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_verbatim_scalars_as_toml_structures_as_json() {
        let table: toml::Table = toml::from_str(
            r#"
            owner = "0xabc"
            count = 5
            ratio = 0.5
            on = true
            when = 1979-05-27T07:32:00Z
            list = [1, "two"]
            [nested]
            a = 1
            "#,
        )
        .unwrap();
        let flat: std::collections::BTreeMap<_, _> = flatten_config(&table).into_iter().collect();
        assert_eq!(flat["owner"], "0xabc");
        assert_eq!(flat["count"], "5");
        assert_eq!(flat["ratio"], "0.5");
        assert_eq!(flat["on"], "true");
        assert_eq!(flat["when"], "1979-05-27T07:32:00Z");
        assert_eq!(flat["list"], r#"[1,"two"]"#);
        assert_eq!(flat["nested"], r#"{"a":1}"#);
    }
}
