//! The scene's local metric frame.
//!
//! Every geometry in the world is stored in metres in a frame centred on the scene origin:
//! `x` east, `y` north, from a transverse Mercator projection of the WGS84 ellipsoid whose central
//! meridian passes through the origin (scale factor 1). Within tens of kilometres of the origin the
//! frame is conformal with a scale error below 1.2·10⁻⁵, so lengths and areas measured in it are
//! what a surveyor would measure.
//!
//! The projection is Krüger's series to sixth order in the third flattening (Karney 2011,
//! "Transverse Mercator with an accuracy of a few nanometers"), which is exact to well under a
//! millimetre anywhere a city lies within 1000 km of its origin.

use bevy::prelude::Resource;
use geo::Coord;

/// WGS84 semi-major axis, metres.
const WGS84_A_M: f64 = 6_378_137.0;
/// WGS84 flattening.
const WGS84_F: f64 = 1.0 / 298.257_223_563;

/// A WGS84 longitude/latitude pair in degrees.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LonLat {
    /// Longitude, degrees east.
    pub lon: f64,
    /// Latitude, degrees north.
    pub lat: f64,
}

impl LonLat {
    /// A new pair from degrees.
    pub fn new(lon: f64, lat: f64) -> Self {
        Self { lon, lat }
    }

    /// Whether both values are finite and within the valid WGS84 range.
    pub fn is_valid(&self) -> bool {
        self.lon.is_finite()
            && self.lat.is_finite()
            && (-180.0..=180.0).contains(&self.lon)
            && (-90.0..=90.0).contains(&self.lat)
    }
}

/// The scene frame: WGS84 ⇄ local metres about the scene origin.
#[derive(Resource, Clone, Debug)]
pub struct GeoFrame {
    origin: LonLat,
    /// Rectifying radius A = a/(1+n)·(1 + n²/4 + n⁴/64 + n⁶/256).
    rect_radius_m: f64,
    /// Eccentricity.
    e: f64,
    alpha: [f64; 6],
    beta: [f64; 6],
    /// Northing of the origin on the central meridian, subtracted so the origin maps to (0, 0).
    origin_northing_m: f64,
}

impl GeoFrame {
    /// A frame centred on `origin`. Panics never; an invalid origin is rejected by scene validation
    /// before a frame is built, and [`GeoFrame::try_new`] reports it for other callers.
    pub fn new(origin: LonLat) -> Self {
        let n = WGS84_F / (2.0 - WGS84_F);
        let n2 = n * n;
        let n3 = n2 * n;
        let n4 = n3 * n;
        let n5 = n4 * n;
        let n6 = n5 * n;
        let rect_radius_m = WGS84_A_M / (1.0 + n) * (1.0 + n2 / 4.0 + n4 / 64.0 + n6 / 256.0);
        let alpha = [
            n / 2.0 - 2.0 * n2 / 3.0 + 5.0 * n3 / 16.0 + 41.0 * n4 / 180.0 - 127.0 * n5 / 288.0
                + 7891.0 * n6 / 37800.0,
            13.0 * n2 / 48.0 - 3.0 * n3 / 5.0 + 557.0 * n4 / 1440.0 + 281.0 * n5 / 630.0
                - 1_983_433.0 * n6 / 1_935_360.0,
            61.0 * n3 / 240.0 - 103.0 * n4 / 140.0
                + 15061.0 * n5 / 26880.0
                + 167_603.0 * n6 / 181_440.0,
            49561.0 * n4 / 161_280.0 - 179.0 * n5 / 168.0 + 6_601_661.0 * n6 / 7_257_600.0,
            34729.0 * n5 / 80640.0 - 3_418_889.0 * n6 / 1_995_840.0,
            212_378_941.0 * n6 / 319_334_400.0,
        ];
        let beta = [
            n / 2.0 - 2.0 * n2 / 3.0 + 37.0 * n3 / 96.0 - n4 / 360.0 - 81.0 * n5 / 512.0
                + 96199.0 * n6 / 604_800.0,
            n2 / 48.0 + n3 / 15.0 - 437.0 * n4 / 1440.0 + 46.0 * n5 / 105.0
                - 1_118_711.0 * n6 / 3_870_720.0,
            17.0 * n3 / 480.0 - 37.0 * n4 / 840.0 - 209.0 * n5 / 4480.0 + 5569.0 * n6 / 90720.0,
            4397.0 * n4 / 161_280.0 - 11.0 * n5 / 504.0 - 830_251.0 * n6 / 7_257_600.0,
            4583.0 * n5 / 161_280.0 - 108_847.0 * n6 / 3_991_680.0,
            20_648_693.0 * n6 / 638_668_800.0,
        ];
        let e = (WGS84_F * (2.0 - WGS84_F)).sqrt();
        let mut frame = Self {
            origin,
            rect_radius_m,
            e,
            alpha,
            beta,
            origin_northing_m: 0.0,
        };
        frame.origin_northing_m = frame.project_raw(origin.lat, 0.0).y;
        frame
    }

    /// The frame as a PROJ definition (transverse Mercator about the origin on WGS84), for
    /// files written in the frame's own coordinates.
    pub fn proj_definition(&self) -> String {
        format!(
            "+proj=tmerc +lat_0={:.12} +lon_0={:.12} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs",
            self.origin.lat, self.origin.lon
        )
    }

    /// A frame centred on `origin`, or `None` when the origin is not a valid WGS84 position.
    pub fn try_new(origin: LonLat) -> Option<Self> {
        origin.is_valid().then(|| Self::new(origin))
    }

    /// The scene origin.
    pub fn origin(&self) -> LonLat {
        self.origin
    }

    /// WGS84 degrees → local metres (x east, y north).
    pub fn to_local(&self, p: LonLat) -> Coord<f64> {
        let mut dlon = p.lon - self.origin.lon;
        // Keep the difference in (-180, 180] so frames near the antimeridian work.
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon <= -180.0 {
            dlon += 360.0;
        }
        let c = self.project_raw(p.lat, dlon);
        Coord {
            x: c.x,
            y: c.y - self.origin_northing_m,
        }
    }

    /// An H3 cell's outline in local metres, as a polygon (its vertices in H3's order).
    pub fn cell_polygon(&self, cell: h3o::CellIndex) -> geo::Polygon<f64> {
        let ring: Vec<Coord<f64>> = cell
            .boundary()
            .iter()
            .map(|ll| self.to_local(LonLat::new(ll.lng(), ll.lat())))
            .collect();
        geo::Polygon::new(geo::LineString::from(ring), Vec::new())
    }

    /// Local metres → WGS84 degrees.
    pub fn to_wgs84(&self, c: Coord<f64>) -> LonLat {
        let xi = (c.y + self.origin_northing_m) / self.rect_radius_m;
        let eta = c.x / self.rect_radius_m;
        let mut xi_p = xi;
        let mut eta_p = eta;
        for (j, b) in self.beta.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi_p -= b * (k * xi).sin() * (k * eta).cosh();
            eta_p -= b * (k * xi).cos() * (k * eta).sinh();
        }
        // Conformal latitude, then geographic latitude by Newton's method on tan φ (Karney 2011, eq. 19–21).
        let tau_p = xi_p.sin() / (eta_p.sinh().powi(2) + xi_p.cos().powi(2)).sqrt();
        let mut tau = tau_p;
        for _ in 0..5 {
            let sigma = (self.e * (self.e * tau / (1.0 + tau * tau).sqrt()).atanh()).sinh();
            let tau_i = tau * (1.0 + sigma * sigma).sqrt() - sigma * (1.0 + tau * tau).sqrt();
            let dtau = (tau_p - tau_i) / (1.0 + tau_i * tau_i).sqrt()
                * (1.0 + (1.0 - self.e * self.e) * tau * tau)
                / ((1.0 - self.e * self.e) * (1.0 + tau * tau).sqrt());
            tau += dtau;
            if dtau.abs() < 1e-14 {
                break;
            }
        }
        let lat = tau.atan().to_degrees();
        let dlon = eta_p.sinh().atan2(xi_p.cos()).to_degrees();
        let mut lon = self.origin.lon + dlon;
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        LonLat { lon, lat }
    }

    /// Transverse Mercator with the central meridian at dlon = 0, northing from the equator.
    fn project_raw(&self, lat_deg: f64, dlon_deg: f64) -> Coord<f64> {
        let phi = lat_deg.to_radians();
        let lam = dlon_deg.to_radians();
        let e = self.e;
        let t = (phi.sin().atanh() - e * (e * phi.sin()).atanh()).sinh();
        let xi_p = t.atan2(lam.cos());
        let eta_p = (lam.sin() / (1.0 + t * t).sqrt()).atanh();
        let mut xi = xi_p;
        let mut eta = eta_p;
        for (j, a) in self.alpha.iter().enumerate() {
            let k = 2.0 * (j as f64 + 1.0);
            xi += a * (k * xi_p).sin() * (k * eta_p).cosh();
            eta += a * (k * xi_p).cos() * (k * eta_p).sinh();
        }
        Coord {
            x: self.rect_radius_m * eta,
            y: self.rect_radius_m * xi,
        }
    }

    /// The point scale factor at a local position (1 on the central meridian, growing as x²/2R²).
    /// Simulations that need sub-per-mille accuracy in lengths far from the origin can use it.
    pub fn scale_factor(&self, c: Coord<f64>) -> f64 {
        let r = 6_371_008.8;
        1.0 + c.x * c.x / (2.0 * r * r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_maps_to_zero() {
        let f = GeoFrame::new(LonLat::new(117.2272, 31.8206));
        let c = f.to_local(f.origin());
        assert!(c.x.abs() < 1e-9 && c.y.abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn one_degree_of_latitude_is_known_length() {
        // Meridian arc from 31° to 32° N on WGS84: 110 878.110 75 m by GeographicLib's geodesic
        // solver (Geodesic.WGS84.Inverse(31, 117, 32, 117)).
        let f = GeoFrame::new(LonLat::new(117.0, 31.0));
        let c = f.to_local(LonLat::new(117.0, 32.0));
        assert!((c.y - 110_878.110_75).abs() < 1e-3, "{}", c.y);
        assert!(c.x.abs() < 1e-6);
    }
}
