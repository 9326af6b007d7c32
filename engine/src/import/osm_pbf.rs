//! A reader for OpenStreetMap's PBF format (<https://wiki.openstreetmap.org/wiki/PBF_Format>):
//! length-prefixed blobs of zlib-compressed protobuf blocks holding nodes (plain and dense),
//! ways and relations. Decoded are ids, coordinates, tags, way node lists and relation members:
//! what the road network (traffic) and the gazetteer ([`crate::address`]) read.

use std::collections::HashMap;

/// A tag list.
pub type Tags = Vec<(String, String)>;

/// A relation member's kind.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// Node.
    Node,
    /// Way.
    Way,
    /// Relation.
    Relation,
}

/// A relation.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct Relation {
    /// OSM id.
    pub id: i64,
    /// Tags.
    pub tags: Tags,
    /// Members: kind, id, role.
    pub members: Vec<(MemberKind, i64, String)>,
}

/// A way.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default)]
pub struct Way {
    /// OSM id.
    pub id: i64,
    /// Tags.
    pub tags: Tags,
    /// Node ids in order.
    pub nodes: Vec<i64>,
}

/// What a PBF file holds (nodes without tags keep only their position).
#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
pub struct OsmData {
    /// Node positions, degrees (lon, lat).
    pub nodes: HashMap<i64, (f64, f64)>,
    /// Tags of the nodes that have any.
    pub node_tags: HashMap<i64, Tags>,
    /// Ways.
    pub ways: Vec<Way>,
    /// Relations.
    pub relations: Vec<Relation>,
}

/// Why a PBF file could not be read; the string says where (blob number, field).
pub type PbfError = String;

struct Buf<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Buf<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, i: 0 }
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn varint(&mut self) -> Result<u64, PbfError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.b.get(self.i) else {
                return Err("truncated varint".into());
            };
            self.i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }
    fn bytes(&mut self) -> Result<&'a [u8], PbfError> {
        let n = self.varint()? as usize;
        let end = self
            .i
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("truncated field")?;
        let s = &self.b[self.i..end];
        self.i = end;
        Ok(s)
    }
    /// (field number, wire type)
    fn key(&mut self) -> Result<(u32, u8), PbfError> {
        let k = self.varint()?;
        Ok(((k >> 3) as u32, (k & 7) as u8))
    }
    fn skip(&mut self, wire: u8) -> Result<(), PbfError> {
        match wire {
            0 => {
                self.varint()?;
            }
            1 => self.i += 8,
            2 => {
                self.bytes()?;
            }
            5 => self.i += 4,
            w => return Err(format!("unknown protobuf wire type {w}")),
        }
        if self.i > self.b.len() {
            return Err("truncated field".into());
        }
        Ok(())
    }
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Packed varints.
fn packed(b: &[u8]) -> Result<Vec<u64>, PbfError> {
    let mut p = Buf::new(b);
    let mut out = Vec::new();
    while !p.done() {
        out.push(p.varint()?);
    }
    Ok(out)
}

/// Packed zigzag varints, delta-coded.
fn packed_delta(b: &[u8]) -> Result<Vec<i64>, PbfError> {
    let mut acc = 0i64;
    Ok(packed(b)?
        .into_iter()
        .map(|v| {
            acc = acc.wrapping_add(zigzag(v));
            acc
        })
        .collect())
}

/// Decode a whole `.osm.pbf` file.
pub fn read(bytes: &[u8]) -> Result<OsmData, PbfError> {
    let mut out = OsmData::default();
    let mut i = 0usize;
    let mut blob_no = 0usize;
    while i < bytes.len() {
        blob_no += 1;
        let start = i;
        let at = |m: String| format!("blob {blob_no} (byte {start}): {m}");
        let len = bytes
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| at("truncated blob header length".into()))?;
        i += 4;
        let header = bytes
            .get(i..i + len)
            .ok_or_else(|| at("truncated blob header".into()))?;
        i += len;
        let (mut kind, mut datasize) = (String::new(), 0usize);
        let mut h = Buf::new(header);
        while !h.done() {
            match h.key().map_err(at)? {
                (1, 2) => kind = String::from_utf8_lossy(h.bytes().map_err(at)?).into_owned(),
                (3, 0) => datasize = h.varint().map_err(at)? as usize,
                (_, w) => h.skip(w).map_err(at)?,
            }
        }
        let blob = bytes
            .get(i..i + datasize)
            .ok_or_else(|| at("truncated blob".into()))?;
        i += datasize;
        let data = blob_data(blob).map_err(at)?;
        match kind.as_str() {
            "OSMHeader" => check_header(&data).map_err(at)?,
            "OSMData" => primitive_block(&data, &mut out).map_err(at)?,
            _ => {} // unknown blob kinds are skipped, as the format says
        }
    }
    Ok(out)
}

fn blob_data(blob: &[u8]) -> Result<Vec<u8>, PbfError> {
    let mut b = Buf::new(blob);
    let mut raw_size = 0usize;
    let mut out = None;
    while !b.done() {
        match b.key()? {
            (1, 2) => out = Some(b.bytes()?.to_vec()),
            (2, 0) => raw_size = b.varint()? as usize,
            (3, 2) => {
                let z = b.bytes()?;
                let data = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(
                    z,
                    raw_size.max(1) * 2 + 1024,
                )
                .map_err(|e| format!("cannot inflate: {e:?}"))?;
                out = Some(data);
            }
            (4..=7, _) => return Err("blob compression other than zlib is not supported".into()),
            (_, w) => b.skip(w)?,
        }
    }
    out.ok_or_else(|| "blob has no data".into())
}

fn check_header(data: &[u8]) -> Result<(), PbfError> {
    let mut b = Buf::new(data);
    while !b.done() {
        match b.key()? {
            (4, 2) => {
                let f = String::from_utf8_lossy(b.bytes()?).into_owned();
                if !matches!(
                    f.as_str(),
                    "OsmSchema-V0.6" | "DenseNodes" | "HistoricalInformation"
                ) {
                    return Err(format!(
                        "the file requires the feature '{f}', which this reader lacks"
                    ));
                }
            }
            (_, w) => b.skip(w)?,
        }
    }
    Ok(())
}

fn primitive_block(data: &[u8], out: &mut OsmData) -> Result<(), PbfError> {
    let mut b = Buf::new(data);
    let mut strings: Vec<String> = Vec::new();
    let mut groups: Vec<&[u8]> = Vec::new();
    let (mut gran, mut lat_off, mut lon_off) = (100i64, 0i64, 0i64);
    while !b.done() {
        match b.key()? {
            (1, 2) => {
                let mut st = Buf::new(b.bytes()?);
                while !st.done() {
                    match st.key()? {
                        (1, 2) => strings.push(String::from_utf8_lossy(st.bytes()?).into_owned()),
                        (_, w) => st.skip(w)?,
                    }
                }
            }
            (2, 2) => groups.push(b.bytes()?),
            (17, 0) => gran = b.varint()? as i64,
            (19, 0) => lat_off = b.varint()? as i64,
            (20, 0) => lon_off = b.varint()? as i64,
            (_, w) => b.skip(w)?,
        }
    }
    let s = |k: u64| -> Result<String, PbfError> {
        strings
            .get(k as usize)
            .cloned()
            .ok_or_else(|| format!("string index {k} out of range"))
    };
    let deg = |off: i64, v: i64| 1e-9 * (off + gran * v) as f64;
    for g in groups {
        let mut gb = Buf::new(g);
        while !gb.done() {
            match gb.key()? {
                (1, 2) => {
                    // plain node
                    let mut nb = Buf::new(gb.bytes()?);
                    let (mut id, mut lat, mut lon) = (0, 0, 0);
                    let (mut keys, mut vals) = (Vec::new(), Vec::new());
                    while !nb.done() {
                        match nb.key()? {
                            (1, 0) => id = zigzag(nb.varint()?),
                            (2, 2) => keys = packed(nb.bytes()?)?,
                            (3, 2) => vals = packed(nb.bytes()?)?,
                            (8, 0) => lat = zigzag(nb.varint()?),
                            (9, 0) => lon = zigzag(nb.varint()?),
                            (_, w) => nb.skip(w)?,
                        }
                    }
                    out.nodes.insert(id, (deg(lon_off, lon), deg(lat_off, lat)));
                    if !keys.is_empty() {
                        let tags = keys
                            .iter()
                            .zip(&vals)
                            .map(|(k, v)| Ok((s(*k)?, s(*v)?)))
                            .collect::<Result<_, PbfError>>()?;
                        out.node_tags.insert(id, tags);
                    }
                }
                (2, 2) => {
                    let mut db = Buf::new(gb.bytes()?);
                    let (mut ids, mut lats, mut lons, mut kv) =
                        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    while !db.done() {
                        match db.key()? {
                            (1, 2) => ids = packed_delta(db.bytes()?)?,
                            (8, 2) => lats = packed_delta(db.bytes()?)?,
                            (9, 2) => lons = packed_delta(db.bytes()?)?,
                            (10, 2) => kv = packed(db.bytes()?)?,
                            (_, w) => db.skip(w)?,
                        }
                    }
                    if ids.len() != lats.len() || ids.len() != lons.len() {
                        return Err("dense nodes with unequal id/lat/lon counts".into());
                    }
                    let mut kvi = kv.into_iter();
                    for (n, &id) in ids.iter().enumerate() {
                        out.nodes
                            .insert(id, (deg(lon_off, lons[n]), deg(lat_off, lats[n])));
                        // keys_vals: k v k v … 0 per node (absent when no node has tags)
                        let mut tags = Vec::new();
                        loop {
                            match kvi.next() {
                                None | Some(0) => break,
                                Some(k) => {
                                    let v = kvi.next().ok_or("keys_vals ends inside a pair")?;
                                    tags.push((s(k)?, s(v)?));
                                }
                            }
                        }
                        if !tags.is_empty() {
                            out.node_tags.insert(id, tags);
                        }
                    }
                }
                (3, 2) => {
                    let mut wb = Buf::new(gb.bytes()?);
                    let mut w = Way::default();
                    let (mut keys, mut vals) = (Vec::new(), Vec::new());
                    while !wb.done() {
                        match wb.key()? {
                            (1, 0) => w.id = wb.varint()? as i64,
                            (2, 2) => keys = packed(wb.bytes()?)?,
                            (3, 2) => vals = packed(wb.bytes()?)?,
                            (8, 2) => w.nodes = packed_delta(wb.bytes()?)?,
                            (_, t) => wb.skip(t)?,
                        }
                    }
                    w.tags = keys
                        .iter()
                        .zip(&vals)
                        .map(|(k, v)| Ok((s(*k)?, s(*v)?)))
                        .collect::<Result<_, PbfError>>()?;
                    out.ways.push(w);
                }
                (4, 2) => {
                    let mut rb = Buf::new(gb.bytes()?);
                    let mut r = Relation::default();
                    let (mut keys, mut vals, mut roles, mut ids, mut types) =
                        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    while !rb.done() {
                        match rb.key()? {
                            (1, 0) => r.id = rb.varint()? as i64,
                            (2, 2) => keys = packed(rb.bytes()?)?,
                            (3, 2) => vals = packed(rb.bytes()?)?,
                            (8, 2) => roles = packed(rb.bytes()?)?,
                            (9, 2) => ids = packed_delta(rb.bytes()?)?,
                            (10, 2) => types = packed(rb.bytes()?)?,
                            (_, t) => rb.skip(t)?,
                        }
                    }
                    r.tags = keys
                        .iter()
                        .zip(&vals)
                        .map(|(k, v)| Ok((s(*k)?, s(*v)?)))
                        .collect::<Result<_, PbfError>>()?;
                    for (n, &id) in ids.iter().enumerate() {
                        let kind = match types.get(n) {
                            Some(0) => MemberKind::Node,
                            Some(1) => MemberKind::Way,
                            _ => MemberKind::Relation,
                        };
                        r.members.push((kind, id, s(*roles.get(n).unwrap_or(&0))?));
                    }
                    out.relations.push(r);
                }
                (_, w) => gb.skip(w)?,
            }
        }
    }
    Ok(())
}
