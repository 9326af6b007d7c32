//! Where the view's camera is: the command line's camera specs and the camera they give for
//! a city.

use bevy::camera::ScalingMode;
use bevy::math::DVec2;
use bevy::prelude::*;

use super::city::CityStatic;
use super::meshes::to_view;

/// Where the camera looks from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CameraSpec {
    /// Straight down over the whole city, orthographic (a plan).
    Top,
    /// From the south-west, 35° above the horizon, the whole city in view.
    Overview,
    /// From `eye` towards `target` (scene frame, m; z up).
    LookAt {
        /// Camera position.
        eye: [f64; 3],
        /// Point looked at.
        target: [f64; 3],
    },
}

impl CameraSpec {
    /// Parse `top`, `overview` or `X,Y,Z,TX,TY,TZ` (metres in the scene frame, z up).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "top" => Ok(Self::Top),
            "overview" => Ok(Self::Overview),
            _ => {
                let v: Vec<f64> = s
                    .split(',')
                    .map(|x| x.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        format!(
                            "camera '{s}': give `top`, `overview` or six numbers X,Y,Z,TX,TY,TZ"
                        )
                    })?;
                if v.len() != 6 || v.iter().any(|x| !x.is_finite()) {
                    return Err(format!(
                        "camera '{s}': give `top`, `overview` or six numbers X,Y,Z,TX,TY,TZ"
                    ));
                }
                Ok(Self::LookAt {
                    eye: [v[0], v[1], v[2]],
                    target: [v[3], v[4], v[5]],
                })
            }
        }
    }
}
/// The camera's place for a spec, in view axes: (transform, projection).
pub fn camera_for(
    spec: CameraSpec,
    city: &CityStatic,
    origin: DVec2,
    aspect: f32,
) -> (Transform, Projection) {
    let (lo, hi) = city.bounds_m;
    let size = hi - lo;
    let ground = city.ground_at(city.centre_m());
    let top = city
        .buildings
        .iter()
        .map(|b| (b.base_m + b.height_m) as f32)
        .fold(ground, f32::max);
    match spec {
        CameraSpec::Top => {
            let c = to_view(origin, city.centre_m(), top as f64 + 200.0);
            let height = (size.y as f32).max(size.x as f32 / aspect) * 1.02;
            (
                Transform::from_translation(Vec3::from(c))
                    .looking_at(Vec3::new(c[0], ground, c[2]), Vec3::NEG_Z),
                Projection::from(OrthographicProjection {
                    scaling_mode: ScalingMode::FixedVertical {
                        viewport_height: height,
                    },
                    near: 0.1,
                    far: 200.0 + (top - ground) + 1000.0,
                    ..OrthographicProjection::default_3d()
                }),
            )
        }
        CameraSpec::Overview => {
            let r = (size.length() as f32).max(100.0) * 0.7;
            let target = Vec3::from(to_view(origin, city.centre_m(), ground as f64));
            let elev = 35f32.to_radians();
            // From the south-west: view x west, z south.
            let dir = Vec3::new(-0.6, 0.0, 0.8).normalize();
            let eye = target + dir * r * elev.cos() + Vec3::Y * r * elev.sin();
            (
                Transform::from_translation(eye).looking_at(target, Vec3::Y),
                Projection::Perspective(PerspectiveProjection {
                    fov: 45f32.to_radians(),
                    far: r * 10.0,
                    ..default()
                }),
            )
        }
        CameraSpec::LookAt { eye, target } => {
            let e = Vec3::from(to_view(origin, DVec2::new(eye[0], eye[1]), eye[2]));
            let t = Vec3::from(to_view(origin, DVec2::new(target[0], target[1]), target[2]));
            (
                Transform::from_translation(e).looking_at(t, Vec3::Y),
                Projection::Perspective(PerspectiveProjection {
                    fov: 45f32.to_radians(),
                    far: (e - t).length() * 10.0 + 1000.0,
                    ..default()
                }),
            )
        }
    }
}
