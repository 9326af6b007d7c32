//! Attribute mapping: which source field feeds which model attribute, in which unit.
//!
//! Each [`LayerKind`] has a fixed list of model attributes ([`LayerKind::attributes`]), each with a
//! default source field name and a quantity. A scene's `fields` table can rename the source field,
//! give its unit, or give a constant:
//!
//! ```toml
//! fields = { height_m = "HEIGHT", speed_limit_mps = { field = "maxspeed", unit = "mph" }, manning_n = { value = 0.015 } }
//! ```

use serde::Deserialize;

/// What a layer's features become.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Directed road links (a two-way street becomes two).
    Roads,
    /// Junctions, with signal programs.
    Intersections,
    /// Building footprints.
    Buildings,
    /// Drainage pipes between manholes/outfalls.
    Conduits,
    /// Manholes / junction nodes.
    Manholes,
    /// Outfalls.
    Outfalls,
    /// Sensors.
    Sensors,
    /// Emission sources.
    EmissionSources,
    /// Addresses and named places for the gazetteer ([`crate::address`]); they spawn no entities.
    Addresses,
}

/// The physical quantity of an attribute, which sets the units it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Metres (m, cm, mm, km, ft).
    Length,
    /// m/s (m/s, km/h, mph, kn).
    Speed,
    /// kg/s (kg/s, g/s, mg/s, kg/h, t/yr).
    MassRate,
    /// Kelvin (K, C).
    Temperature,
    /// Seconds (s, min, h).
    Duration,
    /// A plain number (count, coefficient).
    Number,
    /// Text.
    Text,
    /// true/false (also yes/no, 1/0).
    Bool,
}

/// One model attribute of a layer kind.
#[derive(Clone, Copy, Debug)]
pub struct Attribute {
    /// Model attribute name, as used in `fields`.
    pub name: &'static str,
    /// Source field read when the scene does not say.
    pub default_field: &'static str,
    /// Its quantity.
    pub quantity: Quantity,
    /// The unit source values are in when the scene does not say.
    pub default_unit: &'static str,
    /// Whether every feature must have it.
    pub required: bool,
}

const fn attr(
    name: &'static str,
    default_field: &'static str,
    quantity: Quantity,
    default_unit: &'static str,
    required: bool,
) -> Attribute {
    Attribute {
        name,
        default_field,
        quantity,
        default_unit,
        required,
    }
}

use Quantity::*;

const ROADS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("name", "name", Text, "", false),
    attr("lanes", "lanes", Number, "", false),
    attr("speed_limit_mps", "maxspeed", Speed, "km/h", false),
    attr("lane_width_m", "lane_width", Length, "m", false),
    attr("oneway", "oneway", Bool, "", false),
    attr("from", "from", Text, "", false),
    attr("to", "to", Text, "", false),
];
const INTERSECTIONS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("signal", "signal", Text, "", false),
    attr("signal_offset_s", "signal_offset", Duration, "s", false),
];
const BUILDINGS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("height_m", "height", Length, "m", false),
    attr("floors", "floors", Number, "", false),
    attr("use", "use", Text, "", false),
    attr("occupants", "occupants", Number, "", false),
];
const CONDUITS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("from", "from", Text, "", true),
    attr("to", "to", Text, "", true),
    attr("shape", "shape", Text, "", false),
    attr("diameter_m", "diameter", Length, "m", false),
    attr("width_m", "width", Length, "m", false),
    attr("height_m", "height", Length, "m", false),
    attr("manning_n", "roughness", Number, "", false),
    attr("inlet_offset_m", "inlet_offset", Length, "m", false),
    attr("outlet_offset_m", "outlet_offset", Length, "m", false),
];
const MANHOLES: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("invert_m", "invert", Length, "m", true),
    attr("rim_m", "rim", Length, "m", false),
    attr("area_m2", "area", Number, "", false),
];
const OUTFALLS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("invert_m", "invert", Length, "m", true),
];
const SENSORS: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("kind", "kind", Text, "", true),
    attr("station", "station", Text, "", false),
    attr("pollutants", "pollutants", Text, "", false),
];
const EMISSION_SOURCES: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("pollutant", "pollutant", Text, "", true),
    attr("rate_kg_s", "rate", MassRate, "kg/s", true),
    attr("height_m", "height", Length, "m", false),
    attr("diameter_m", "diameter", Length, "m", false),
    attr("exit_velocity_mps", "exit_velocity", Speed, "m/s", false),
    attr(
        "exit_temperature_k",
        "exit_temperature",
        Temperature,
        "K",
        false,
    ),
];

const ADDRESSES: &[Attribute] = &[
    attr("id", "id", Text, "", false),
    attr("street", "street", Text, "", false),
    attr("housenumber", "housenumber", Text, "", false),
    attr("postcode", "postcode", Text, "", false),
    attr("district", "district", Text, "", false),
    attr("city", "city", Text, "", false),
    attr("name", "name", Text, "", false),
    attr("category", "category", Text, "", false),
    // Other names of the same street, city or place (other languages or scripts), `;`-separated.
    attr("street_alt", "street_alt", Text, "", false),
    attr("city_alt", "city_alt", Text, "", false),
    attr("name_alt", "name_alt", Text, "", false),
];

impl LayerKind {
    /// The model attributes this kind reads.
    pub fn attributes(self) -> &'static [Attribute] {
        match self {
            LayerKind::Roads => ROADS,
            LayerKind::Intersections => INTERSECTIONS,
            LayerKind::Buildings => BUILDINGS,
            LayerKind::Conduits => CONDUITS,
            LayerKind::Manholes => MANHOLES,
            LayerKind::Outfalls => OUTFALLS,
            LayerKind::Sensors => SENSORS,
            LayerKind::EmissionSources => EMISSION_SOURCES,
            LayerKind::Addresses => ADDRESSES,
        }
    }

    /// The attribute named `name`.
    pub fn attribute(self, name: &str) -> Option<&'static Attribute> {
        self.attributes().iter().find(|a| a.name == name)
    }

    /// The name used in scenes.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Roads => "roads",
            LayerKind::Intersections => "intersections",
            LayerKind::Buildings => "buildings",
            LayerKind::Conduits => "conduits",
            LayerKind::Manholes => "manholes",
            LayerKind::Outfalls => "outfalls",
            LayerKind::Sensors => "sensors",
            LayerKind::EmissionSources => "emission_sources",
            LayerKind::Addresses => "addresses",
        }
    }

    /// Nodes load before the links that refer to them.
    pub fn load_order(self) -> u8 {
        match self {
            LayerKind::Intersections | LayerKind::Manholes | LayerKind::Outfalls => 0,
            _ => 1,
        }
    }
}

/// How a scene maps one attribute.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum FieldSpec {
    /// Just the source field's name.
    Field(String),
    /// Field, unit and/or constant.
    Full(FieldDetail),
}

/// The long form of [`FieldSpec`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldDetail {
    /// Source field name.
    pub field: Option<String>,
    /// Unit of the source values (see [`Quantity`]).
    pub unit: Option<String>,
    /// A constant used for every feature, or where the field is null.
    pub value: Option<toml::Value>,
}

impl FieldSpec {
    /// The source field, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            FieldSpec::Field(f) => Some(f),
            FieldSpec::Full(d) => d.field.as_deref(),
        }
    }

    /// The unit, if given.
    pub fn unit(&self) -> Option<&str> {
        match self {
            FieldSpec::Field(_) => None,
            FieldSpec::Full(d) => d.unit.as_deref(),
        }
    }

    /// The constant, if given.
    pub fn value(&self) -> Option<&toml::Value> {
        match self {
            FieldSpec::Field(_) => None,
            FieldSpec::Full(d) => d.value.as_ref(),
        }
    }

    /// Check the spec against the attribute it maps.
    pub fn check(&self, kind: LayerKind, attr: &str) -> Result<(), String> {
        let Some(a) = kind.attribute(attr) else {
            return Err(format!(
                "'{attr}' is not an attribute of {} layers",
                kind.as_str()
            ));
        };
        if let Some(u) = self.unit() {
            to_si(a.quantity, 1.0, u)?;
        }
        if let FieldSpec::Full(d) = self
            && d.field.is_none()
            && d.value.is_none()
        {
            return Err("give a `field`, a `value`, or both".into());
        }
        Ok(())
    }
}

/// Convert `v` in `unit` to SI for `q`.
pub fn to_si(q: Quantity, v: f64, unit: &str) -> Result<f64, String> {
    let u = unit.trim();
    let r = match (q, u) {
        (Length, "m") => v,
        (Length, "cm") => v * 0.01,
        (Length, "mm") => v * 0.001,
        (Length, "km") => v * 1000.0,
        (Length, "ft") => v * 0.3048,
        (Length, "in") => v * 0.0254,
        (Speed, "m/s") => v,
        (Speed, "km/h") => v / 3.6,
        (Speed, "mph") => v * 0.44704,
        (Speed, "kn") => v * 0.514_444,
        (MassRate, "kg/s") => v,
        (MassRate, "g/s") => v * 1e-3,
        (MassRate, "mg/s") => v * 1e-6,
        (MassRate, "kg/h") => v / 3600.0,
        (MassRate, "t/yr") => v * 1000.0 / (365.25 * 86400.0),
        (Temperature, "K") => v,
        (Temperature, "C") => v + 273.15,
        (Duration, "s") => v,
        (Duration, "min") => v * 60.0,
        (Duration, "h") => v * 3600.0,
        (Number | Text | Bool, "") => v,
        _ => {
            let known = match q {
                Length => "m, cm, mm, km, ft, in",
                Speed => "m/s, km/h, mph, kn",
                MassRate => "kg/s, g/s, mg/s, kg/h, t/yr",
                Temperature => "K, C",
                Duration => "s, min, h",
                Number | Text | Bool => "none (this attribute has no unit)",
            };
            return Err(format!("unknown unit '{u}' (known: {known})"));
        }
    };
    Ok(r)
}
