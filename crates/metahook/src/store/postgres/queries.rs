//! Read-only queries behind the admin API on PostgreSQL.

use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};

use super::PostgresStore;
use crate::store::listing::{Listing, listing, page_sql};
use crate::store::{ListQuery, Page, StoreError};

impl PostgresStore {
    pub(crate) async fn list(&self, resource: &str, query: &ListQuery) -> Result<Page, StoreError> {
        let listing = listing(resource).ok_or_else(|| StoreError::Unknown(resource.to_owned()))?;
        let (sql, values) = page_sql(listing, query, |n| format!("${n}"));
        let client = self.client().await?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&query.after];
        params.extend(values.iter().map(|v| *v as &(dyn ToSql + Sync)));
        let rows = client.query(&sql, &params).await?;
        let mut items = Vec::new();
        let mut last = None;
        for row in rows {
            if items.len() == query.limit {
                return Ok(Page { items, next_cursor: last });
            }
            let mut item = Map::new();
            for (i, column) in row.columns().iter().enumerate() {
                if column.name() == "cursor" {
                    last = Some(row.get::<_, i64>(i));
                    continue;
                }
                item.insert(column.name().to_owned(), to_json(listing, &row, i, column.type_()));
            }
            (listing.finish)(&mut item);
            items.push(Value::Object(item));
        }
        Ok(Page { items, next_cursor: None })
    }
}

fn to_json(listing: &Listing, row: &tokio_postgres::Row, i: usize, ty: &Type) -> Value {
    let name = row.columns()[i].name();
    match *ty {
        Type::INT8 => row.get::<_, Option<i64>>(i).map(Value::from).unwrap_or(Value::Null),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(Value::from).unwrap_or(Value::Null),
        Type::FLOAT8 => row.get::<_, Option<f64>>(i).map(Value::from).unwrap_or(Value::Null),
        Type::BOOL => row.get::<_, Option<bool>>(i).map(Value::Bool).unwrap_or(Value::Null),
        _ => match row.get::<_, Option<String>>(i) {
            None => Value::Null,
            Some(text) if listing.json.contains(&name) => {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            Some(text) => Value::String(text),
        },
    }
}
