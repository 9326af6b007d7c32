//! Reading one feature's mapped attributes: source field or scene constant, unit conversion,
//! nulls, and the checks every importer shares.

use std::collections::BTreeMap;

use gdal::vector::{Feature, FieldValue};

use super::fields::{Attribute, FieldSpec, LayerKind, Quantity, to_si};
use crate::scene::LayerSpec;

/// Reads mapped attributes of one feature.
pub(super) struct Reader<'a> {
    kind: LayerKind,
    fields: &'a BTreeMap<String, toml::Spanned<FieldSpec>>,
    /// Source field index per attribute name (None: the field is absent from the layer).
    index: BTreeMap<&'static str, Option<usize>>,
}

/// The value of field `idx`, or `None` when it is null or was never set. (GDAL reads an unset
/// field as 0, and GeoJSON features routinely omit properties their neighbours have.)
fn field_value(f: &Feature, idx: usize, name: &str) -> Result<Option<FieldValue>, String> {
    let i =
        i32::try_from(idx).map_err(|_| format!("field index {idx} of `{name}` is out of range"))?;
    // SAFETY: `f` is a live feature and `idx` came from its own definition's field list.
    let set = unsafe { gdal_sys::OGR_F_IsFieldSetAndNotNull(f.c_feature(), i) } != 0;
    if !set {
        return Ok(None);
    }
    f.field(idx)
        .map_err(|e| format!("cannot read `{name}`: {e}"))
}

impl<'a> Reader<'a> {
    pub(super) fn new(
        kind: LayerKind,
        spec: &'a LayerSpec,
        feature_names: &[String],
    ) -> Result<Self, String> {
        let mut index = BTreeMap::new();
        for a in kind.attributes() {
            let mapped = spec.fields.get(a.name).map(|s| s.get_ref());
            let field = match mapped {
                Some(m) => m.field(),
                None => Some(a.default_field),
            };
            let idx =
                field.and_then(|f| feature_names.iter().position(|n| n.eq_ignore_ascii_case(f)));
            if mapped.is_some_and(|m| m.field().is_some()) && idx.is_none() {
                return Err(format!(
                    "field '{}' mapped to `{}` is not in the layer (its fields: {})",
                    field.unwrap_or_default(),
                    a.name,
                    feature_names.join(", ")
                ));
            }
            if a.required && idx.is_none() && mapped.and_then(|m| m.value()).is_none() {
                return Err(format!(
                    "{} layers need `{}`; the layer has no field '{}' (its fields: {}); map one in the scene's `fields`",
                    kind.as_str(),
                    a.name,
                    field.unwrap_or(a.default_field),
                    feature_names.join(", ")
                ));
            }
            index.insert(a.name, idx);
        }
        Ok(Self {
            kind,
            fields: &spec.fields,
            index,
        })
    }

    fn attr(&self, name: &str) -> &'static Attribute {
        self.kind
            .attribute(name)
            .expect("attribute names are checked against the kind's list")
    }

    fn constant(&self, name: &str) -> Option<&toml::Value> {
        self.fields.get(name).and_then(|s| s.get_ref().value())
    }

    /// Raw field value as text, or the scene's constant.
    pub(super) fn text(&self, f: &Feature, name: &str) -> Result<Option<String>, String> {
        if let Some(Some(idx)) = self.index.get(name) {
            let v = field_value(f, *idx, name)?;
            let s = match v {
                None => None,
                Some(FieldValue::StringValue(s)) => Some(s),
                Some(FieldValue::IntegerValue(i)) => Some(i.to_string()),
                Some(FieldValue::Integer64Value(i)) => Some(i.to_string()),
                Some(FieldValue::RealValue(r)) => Some(if r.fract() == 0.0 && r.abs() < 1e15 {
                    format!("{}", r as i64)
                } else {
                    r.to_string()
                }),
                Some(FieldValue::StringListValue(l)) => Some(l.join(",")),
                Some(other) => {
                    return Err(format!(
                        "`{name}` has an unsupported field type ({other:?})"
                    ));
                }
            };
            if let Some(s) = s {
                return Ok(Some(s));
            }
        }
        Ok(self.constant(name).map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
    }

    /// Numeric attribute in SI.
    pub(super) fn number(&self, f: &Feature, name: &str) -> Result<Option<f64>, String> {
        let a = self.attr(name);
        let unit = self
            .fields
            .get(name)
            .and_then(|s| s.get_ref().unit())
            .unwrap_or(a.default_unit);
        let raw: Option<f64> = match self.index.get(name) {
            Some(Some(idx)) => match field_value(f, *idx, name)? {
                None => None,
                Some(FieldValue::RealValue(r)) => Some(r),
                Some(FieldValue::IntegerValue(i)) => Some(i as f64),
                Some(FieldValue::Integer64Value(i)) => Some(i as f64),
                Some(FieldValue::StringValue(s)) => {
                    let t = s.trim();
                    // Tolerate a unit suffix matching the declared unit ("50 km/h" → 50).
                    let num = t.strip_suffix(unit).map(str::trim).unwrap_or(t);
                    if num.is_empty() {
                        None
                    } else {
                        Some(
                            num.parse::<f64>()
                                .map_err(|_| format!("`{name}` is '{s}', expected a number"))?,
                        )
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "`{name}` has an unsupported field type ({other:?})"
                    ));
                }
            },
            _ => None,
        };
        let raw = match raw {
            Some(r) => Some(r),
            None => match self.constant(name) {
                Some(toml::Value::Float(x)) => Some(*x),
                Some(toml::Value::Integer(i)) => Some(*i as f64),
                Some(other) => {
                    return Err(format!(
                        "the scene's constant for `{name}` is {other}, expected a number"
                    ));
                }
                None => None,
            },
        };
        match raw {
            None => Ok(None),
            Some(r) if !r.is_finite() => Err(format!("`{name}` is {r}, expected a finite number")),
            Some(r) => to_si(a.quantity, r, unit).map(Some),
        }
    }

    pub(super) fn bool(&self, f: &Feature, name: &str) -> Result<Option<bool>, String> {
        debug_assert_eq!(self.attr(name).quantity, Quantity::Bool);
        match self.text(f, name)? {
            None => Ok(None),
            Some(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "y" => Ok(Some(true)),
                "false" | "no" | "0" | "n" | "" => Ok(Some(false)),
                "-1" | "reverse" => Err(format!(
                    "`{name}` is '{s}': reversed one-way roads must be drawn in their direction of travel"
                )),
                _ => Err(format!("`{name}` is '{s}', expected true/false or yes/no")),
            },
        }
    }
}

pub(super) fn positive(name: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if x <= 0.0 => Err(format!("`{name}` must be positive, got {x}")),
        other => Ok(other),
    }
}

pub(super) fn non_negative(name: &str, v: Option<f64>) -> Result<Option<f64>, String> {
    match v {
        Some(x) if x < 0.0 => Err(format!("`{name}` must not be negative, got {x}")),
        other => Ok(other),
    }
}

/// "a Point", "a Polygon", … for messages.
pub(super) fn geometry_name(g: &geo::Geometry<f64>) -> &'static str {
    match g {
        geo::Geometry::Point(_) => "a Point",
        geo::Geometry::Line(_) => "a Line",
        geo::Geometry::LineString(_) => "a LineString",
        geo::Geometry::Polygon(_) => "a Polygon",
        geo::Geometry::MultiPoint(_) => "a MultiPoint",
        geo::Geometry::MultiLineString(_) => "a MultiLineString",
        geo::Geometry::MultiPolygon(_) => "a MultiPolygon",
        geo::Geometry::GeometryCollection(_) => "a GeometryCollection",
        geo::Geometry::Rect(_) => "a Rect",
        geo::Geometry::Triangle(_) => "a Triangle",
    }
}
