//! The view: a Bevy app of its own that draws a simulation's world. The simulation stays a
//! headless, deterministic world ([`Sim`]); the view steps it (live), reads the city from it
//! and keeps its own entities — meshes, materials, a camera — in step. Nothing the view does
//! reaches the simulation's state.

use std::collections::{BTreeMap, HashMap};

use bevy::asset::RenderAssetUsages;
use bevy::math::DVec2;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;

use super::city::{CityNow, CityStatic};
use super::meshes::{self, MeshData, srgb, to_view};
use crate::geo_frame::GeoFrame;
use crate::recorder::Rasters;
use crate::sim::Sim;

/// Which layers are drawn, and how buildings are coloured.
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct Layers {
    /// The ground.
    pub terrain: bool,
    /// Buildings.
    pub buildings: bool,
    /// Roads.
    pub roads: bool,
    /// Vehicles.
    pub vehicles: bool,
    /// Signal states at junctions.
    pub signals: bool,
    /// The flood's water surface.
    pub water: bool,
    /// The air: the latest map of `air_field` as translucent cells.
    pub air: bool,
    /// Sensors, manholes, emission sources.
    pub markers: bool,
    /// The field the air layer shows (e.g. `pollution.NO2`); none: the first pollution map.
    pub air_field: Option<String>,
    /// What colours the buildings.
    pub building_colour: BuildingColour,
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            terrain: true,
            buildings: true,
            roads: true,
            vehicles: true,
            signals: true,
            water: true,
            air: true,
            markers: true,
            air_field: None,
            building_colour: BuildingColour::Use,
        }
    }
}

/// What colours the buildings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildingColour {
    /// Their use.
    Use,
    /// The water depth in their H3 cell (the flood's map).
    FloodDepth,
    /// The air layer's concentration in their H3 cell.
    Exposure,
}

/// The simulation the view shows and how it plays (not `Send`: it holds its own app).
pub struct Playback {
    /// The simulation.
    pub sim: Sim,
    /// Playing or paused.
    pub playing: bool,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Run ahead to this time (s after the start) as fast as possible, then pause.
    pub seek_s: Option<f64>,
    carry_s: f64,
}

impl Playback {
    /// A paused playback of `sim` at 60× real time.
    pub fn new(sim: Sim) -> Self {
        Self {
            sim,
            playing: false,
            speed: 60.0,
            seek_s: None,
            carry_s: 0.0,
        }
    }

    /// Simulated time owed to the clock by real time (playing), s.
    pub(crate) fn carry(&self) -> f64 {
        self.carry_s
    }

    /// Add to (or take from) the time owed, s.
    pub(crate) fn carry_add(&mut self, d_s: f64) {
        self.carry_s = (self.carry_s + d_s).max(0.0);
    }

    /// Step the simulation to `t_s` (or its end), asking for rasters on the last step.
    pub fn step_to(&mut self, t_s: f64) {
        while !self.sim.finished() && self.sim.clock().elapsed_s() + 1e-9 < t_s {
            let last = self.sim.clock().elapsed_s() + self.sim.clock().step_s() >= t_s - 1e-9;
            if last {
                self.sim.world_mut().resource_mut::<Rasters>().request();
            }
            self.sim.step();
        }
    }
}

/// The city the view draws, and where its origin is.
#[derive(Resource)]
pub struct ViewCity {
    /// What does not move.
    pub city: CityStatic,
    /// The view's origin in the frame (the city's centre), m.
    pub origin: DVec2,
    /// The scene frame (for H3 cells).
    pub frame: GeoFrame,
}

/// The view's own entities and materials for the moving parts.
#[derive(Resource, Default)]
pub(crate) struct ViewState {
    vehicles: HashMap<Entity, Entity>,
    signals: HashMap<Entity, Vec<Entity>>,
    water: Option<(Entity, Handle<Mesh>)>,
    water_t: f64,
    air: Option<(Entity, Handle<Mesh>)>,
    air_key: Option<(String, u64)>,
    /// One mesh per tile of buildings (tiles of [`TILE_M`]), so the view culls what is off
    /// screen and a city of 100 000 buildings is a few hundred draws.
    buildings: Vec<(Entity, Handle<Mesh>)>,
    buildings_key: Option<(BuildingColour, String, u64)>,
    statics: Vec<(Entity, &'static str)>,
    vehicle_mesh: Handle<Mesh>,
    speed_materials: Vec<Handle<StandardMaterial>>,
    signal_mesh: Handle<Mesh>,
    signal_materials: [Handle<StandardMaterial>; 3],
    lit: Handle<StandardMaterial>,
    translucent: Handle<StandardMaterial>,
    /// The moment drawn last.
    pub(crate) now: CityNow,
    field_versions: BTreeMap<String, u64>,
}

/// Side of a tile of merged buildings, m.
pub const TILE_M: f64 = 500.0;

/// Shown or hidden, as a layer's switch says.
fn shown(on: bool) -> Visibility {
    if on {
        Visibility::Inherited
    } else {
        Visibility::Hidden
    }
}

/// Put `mesh` in a slot: overwrite the slot's mesh asset in place (no new GPU allocation
/// per update), or spawn its entity the first time, shown as its layer is (the frame that
/// spawns it may be the one captured).
fn put_mesh(
    slot: &mut Option<(Entity, Handle<Mesh>)>,
    mesh: Mesh,
    material: &Handle<StandardMaterial>,
    visible: bool,
    commands: &mut Commands,
    meshes: &mut Assets<Mesh>,
) {
    // Bevy 0.19's mesh allocator gives a mesh with no vertices no room but still copies it,
    // an error every frame it changes; one zero-area triangle uploads and draws nothing.
    let mesh = if mesh.count_vertices() == 0 {
        to_mesh(MeshData {
            positions: vec![[0.0; 3]; 3],
            normals: vec![[0.0, 1.0, 0.0]; 3],
            colors: vec![[0.0; 4]; 3],
            indices: vec![0, 1, 2],
        })
    } else {
        mesh
    };
    match slot {
        Some((_, h)) => {
            if let Some(mut m) = meshes.get_mut(&*h) {
                *m = mesh;
            }
        }
        None => {
            let h = meshes.add(mesh);
            let e = commands
                .spawn((
                    Mesh3d(h.clone()),
                    MeshMaterial3d(material.clone()),
                    Transform::default(),
                    shown(visible),
                ))
                .id();
            *slot = Some((e, h));
        }
    }
}

/// Multisampling for a camera: 4× on a GPU, none on a software adapter (Mesa's lavapipe),
/// where it would double the cost of every frame.
pub(crate) fn msaa_for(adapter: Option<&bevy::render::renderer::RenderAdapterInfo>) -> Msaa {
    match adapter {
        Some(info) if info.device_type == wgpu_types::DeviceType::Cpu => Msaa::Off,
        _ => Msaa::Sample4,
    }
}

/// Turn [`MeshData`] into a Bevy mesh.
pub fn to_mesh(m: MeshData) -> Mesh {
    Mesh::new(
        PrimitiveTopology::TriangleList,
        RenderAssetUsages::default(),
    )
    .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, m.positions)
    .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, m.normals)
    .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, m.colors)
    .with_inserted_indices(Indices::U32(m.indices))
}

/// Colour of a vehicle by its speed: red standing, yellow slow, green at speed.
fn speed_bucket(v_mps: f64) -> usize {
    match v_mps {
        v if v < 0.5 => 0,
        v if v < 3.0 => 1,
        v if v < 6.0 => 2,
        v if v < 9.0 => 3,
        v if v < 12.0 => 4,
        _ => 5,
    }
}

/// Build the static city and the shared assets.
pub(crate) fn setup_city(
    mut commands: Commands,
    view: Res<ViewCity>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut state: ResMut<ViewState>,
) {
    let origin = view.origin;
    let city = &view.city;
    state.lit = materials.add(StandardMaterial {
        base_color: Color::WHITE,
        perceptual_roughness: 0.95,
        reflectance: 0.1,
        double_sided: true,
        cull_mode: None,
        ..default()
    });
    state.translucent = materials.add(StandardMaterial {
        base_color: Color::WHITE,
        alpha_mode: AlphaMode::Blend,
        unlit: true,
        double_sided: true,
        cull_mode: None,
        ..default()
    });
    let lit = state.lit.clone();
    if let Some(t) = &city.terrain {
        let e = commands
            .spawn((
                Mesh3d(meshes.add(to_mesh(meshes::terrain_mesh(t, origin)))),
                MeshMaterial3d(lit.clone()),
                Transform::default(),
            ))
            .id();
        state.statics.push((e, "terrain"));
    }
    let roads = meshes::roads_mesh(city, &city.roads, origin, 0.5);
    if !roads.is_empty() {
        let e = commands
            .spawn((
                Mesh3d(meshes.add(to_mesh(roads))),
                MeshMaterial3d(lit.clone()),
                Transform::default(),
            ))
            .id();
        state.statics.push((e, "roads"));
    }
    // Markers: small posts coloured by what they are.
    let post = meshes.add(Cuboid::new(2.0, 6.0, 2.0));
    for m in &city.markers {
        let c = match m.what {
            "rain_gauge" => srgb(40, 110, 220, 1.0),
            "water_level" => srgb(20, 180, 200, 1.0),
            "air_quality" => srgb(150, 60, 190, 1.0),
            "traffic_detector" => srgb(240, 160, 20, 1.0),
            "manhole" => srgb(90, 90, 90, 1.0),
            _ => srgb(200, 40, 40, 1.0),
        };
        let h = if m.what == "manhole" { 0.4 } else { 1.0 };
        let z = city.ground_at(m.xy_m) as f64 + 3.0 * h;
        let mat = materials.add(StandardMaterial {
            base_color: Color::LinearRgba(LinearRgba::from_f32_array(c)),
            unlit: true,
            ..default()
        });
        let e = commands
            .spawn((
                Mesh3d(post.clone()),
                MeshMaterial3d(mat),
                Transform::from_translation(Vec3::from(to_view(origin, m.xy_m, z)))
                    .with_scale(Vec3::new(1.0, h as f32, 1.0)),
            ))
            .id();
        state.statics.push((e, "markers"));
    }
    state.vehicle_mesh = meshes.add(Cuboid::new(1.0, 1.0, 1.0));
    let ramp = [
        srgb(200, 30, 30, 1.0),
        srgb(230, 110, 30, 1.0),
        srgb(235, 190, 40, 1.0),
        srgb(180, 210, 50, 1.0),
        srgb(90, 190, 60, 1.0),
        srgb(30, 160, 80, 1.0),
    ];
    state.speed_materials = ramp
        .iter()
        .map(|&c| {
            materials.add(StandardMaterial {
                base_color: Color::LinearRgba(LinearRgba::from_f32_array(c)),
                perceptual_roughness: 0.6,
                ..default()
            })
        })
        .collect();
    state.signal_mesh = meshes.add(Sphere::new(1.2));
    let signal = |c: [f32; 4]| StandardMaterial {
        base_color: Color::LinearRgba(LinearRgba::from_f32_array(c)),
        unlit: true,
        ..default()
    };
    state.signal_materials = [
        materials.add(signal(srgb(230, 20, 20, 1.0))),
        materials.add(signal(srgb(250, 200, 0, 1.0))),
        materials.add(signal(srgb(20, 210, 60, 1.0))),
    ];
    // Light: a low sun from the south-east and a soft sky.
    commands.spawn((
        DirectionalLight {
            // With the camera's default exposure (EV100 9.7) and no tonemapping, a white roof
            // in this sun and sky comes out just under full white.
            illuminance: 2_600.0,
            shadow_maps_enabled: false,
            ..default()
        },
        Transform::from_xyz(1.0, 2.0, 1.5).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight {
        color: Color::WHITE,
        brightness: 520.0,
        ..default()
    });
    commands.insert_resource(ClearColor(Color::srgb(0.86, 0.90, 0.95)));
}

/// The field the air layer shows: the one asked for, or the first `pollution.*` map.
fn air_field_name(layers: &Layers, now: &CityNow) -> Option<String> {
    layers.air_field.clone().or_else(|| {
        now.fields
            .keys()
            .find(|k| k.starts_with("pollution."))
            .cloned()
    })
}

/// What [`sync_view`] changes on the view's entities.
#[derive(bevy::ecs::system::SystemParam)]
pub(crate) struct ViewParts<'w, 's> {
    visibility: Query<'w, 's, &'static mut Visibility>,
    transforms: Query<'w, 's, &'static mut Transform>,
    materials: Query<'w, 's, &'static mut MeshMaterial3d<StandardMaterial>>,
}

/// Bring the view's moving parts to the simulation's moment.
pub(crate) fn sync_view(
    mut commands: Commands,
    mut playback: NonSendMut<Playback>,
    view: Res<ViewCity>,
    layers: Res<Layers>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut state: ResMut<ViewState>,
    mut parts: ViewParts,
) {
    let now = CityNow::from_world(playback.sim.world_mut());
    let origin = view.origin;
    let city = &view.city;
    let state = &mut *state;
    // Vehicles: one entity each, sharing a mesh (drawn as instances), facing their lane.
    let mut seen: HashMap<Entity, ()> = HashMap::with_capacity(now.vehicles.len());
    for v in &now.vehicles {
        seen.insert(v.entity, ());
        let z = city.ground_at(v.xy_m) as f64 + 0.9;
        let pos = Vec3::from(to_view(origin, v.xy_m, z));
        let bucket = speed_bucket(v.speed_mps);
        let material = state.speed_materials[bucket].clone();
        let size = match v.kind {
            crate::model::VehicleKind::Bus | crate::model::VehicleKind::Truck => {
                Vec3::new(v.length_m as f32, 3.0, 2.5)
            }
            _ => Vec3::new(v.length_m.max(3.0) as f32, 1.6, 1.9),
        };
        // The frame's heading turns about the view's up axis the same way (view z is −y).
        let place = Transform::from_translation(pos)
            .with_rotation(Quat::from_rotation_y(v.heading_rad as f32))
            .with_scale(size);
        match state.vehicles.get(&v.entity) {
            Some(&e) => {
                if let Ok(mut t) = parts.transforms.get_mut(e) {
                    *t = place;
                }
                if let Ok(mut m) = parts.materials.get_mut(e)
                    && m.0 != material
                {
                    m.0 = material;
                }
            }
            None => {
                let e = commands
                    .spawn((
                        Mesh3d(state.vehicle_mesh.clone()),
                        MeshMaterial3d(material),
                        place,
                        shown(layers.vehicles),
                    ))
                    .id();
                state.vehicles.insert(v.entity, e);
            }
        }
    }
    let gone: Vec<Entity> = state
        .vehicles
        .keys()
        .filter(|k| !seen.contains_key(k))
        .copied()
        .collect();
    for k in gone {
        if let Some(e) = state.vehicles.remove(&k) {
            commands.entity(e).despawn();
        }
    }
    // Signals: a ring of lamps, one per controlled movement.
    for (j, xy) in &city.signals {
        let Some(s) = now.signal_states.get(j) else {
            continue;
        };
        let n = s.len().max(1);
        let lamps = state.signals.entry(*j).or_default();
        while lamps.len() < n {
            let k = lamps.len();
            let a = std::f64::consts::TAU * k as f64 / n as f64;
            let p = *xy + DVec2::new(a.cos(), a.sin()) * 9.0;
            let z = city.ground_at(p) as f64 + 5.0;
            lamps.push(
                commands
                    .spawn((
                        Mesh3d(state.signal_mesh.clone()),
                        MeshMaterial3d(state.signal_materials[0].clone()),
                        Transform::from_translation(Vec3::from(to_view(origin, p, z))),
                        shown(layers.signals),
                    ))
                    .id(),
            );
        }
        for (lamp, ch) in lamps.iter().zip(s.chars()) {
            let k = match ch {
                'G' | 'g' => 2,
                'y' | 'Y' | 'u' => 1,
                _ => 0,
            };
            if let Ok(mut m) = parts.materials.get_mut(*lamp)
                && m.0 != state.signal_materials[k]
            {
                m.0 = state.signal_materials[k].clone();
            }
        }
    }
    // Water: rebuilt when a new depth grid comes.
    if let Some(w) = &now.water
        && (w.t_s != state.water_t || state.water.is_none())
    {
        state.water_t = w.t_s;
        let ground: Vec<f32> = (0..w.nx * w.ny)
            .map(|c| {
                let p = w.origin_m
                    + DVec2::new((c % w.nx) as f64 + 0.5, (c / w.nx) as f64 + 0.5) * w.cell_m;
                city.ground_at(p)
            })
            .collect();
        let mesh = to_mesh(meshes::water_mesh(w, &ground, origin, 0.05, 0.8));
        let material = state.translucent.clone();
        put_mesh(
            &mut state.water,
            mesh,
            &material,
            layers.water,
            &mut commands,
            &mut meshes,
        );
    }
    // Versions of the maps, so meshes are rebuilt only when a map changes.
    let versions: BTreeMap<String, u64> = playback
        .sim
        .world()
        .resource::<crate::recorder::FieldLog>()
        .versions();
    state.field_versions = versions;
    // Air: the chosen map as translucent cells, yellow to red up to its own highest value.
    if let Some(name) = air_field_name(&layers, &now) {
        let version = state.field_versions.get(&name).copied().unwrap_or(0);
        let key = (name.clone(), version);
        if state.air_key.as_ref() != Some(&key)
            && let Some(f) = now.fields.get(&name)
        {
            state.air_key = Some(key);
            let max = f.cells.iter().map(|c| c.1).fold(0.0, f64::max);
            // Only the upper part of the range: the background of a whole map would hide the city.
            let (lo, hi) = (srgb(255, 220, 60, 0.15), srgb(215, 25, 20, 0.6));
            let mesh = meshes::hex_mesh(city, &f.cells, &view.frame, origin, 3.0, |v| {
                (max > 0.0 && v > 0.2 * max)
                    .then(|| meshes::ramp(lo, hi, ((v / max - 0.2) / 0.8) as f32))
            });
            let material = state.translucent.clone();
            put_mesh(
                &mut state.air,
                to_mesh(mesh),
                &material,
                layers.air,
                &mut commands,
                &mut meshes,
            );
        }
    }
    // Buildings: one mesh, recoloured when the colouring or its map changes.
    let (colour_field, version) = match layers.building_colour {
        BuildingColour::Use => (String::new(), 0),
        BuildingColour::FloodDepth => (
            "flood.depth".to_string(),
            state
                .field_versions
                .get("flood.depth")
                .copied()
                .unwrap_or(0),
        ),
        BuildingColour::Exposure => {
            let n = air_field_name(&layers, &now).unwrap_or_default();
            let v = state.field_versions.get(&n).copied().unwrap_or(0);
            (n, v)
        }
    };
    let key = (layers.building_colour, colour_field.clone(), version);
    if state.buildings_key.as_ref() != Some(&key) {
        state.buildings_key = Some(key);
        let index = playback
            .sim
            .world()
            .resource::<crate::index::SpatialIndex>();
        let values: HashMap<u64, f64> = now
            .fields
            .get(&colour_field)
            .map(|f| f.cells.iter().copied().collect())
            .unwrap_or_default();
        let max = values.values().copied().fold(0.0, f64::max);
        let mode = layers.building_colour;
        let colour = |b: &super::city::BuildingGeom| {
            let v = index
                .cell_at(b.centroid_m)
                .and_then(|c| values.get(&u64::from(c)).copied())
                .unwrap_or(0.0);
            match mode {
                BuildingColour::Use => meshes::use_colour(b.use_),
                BuildingColour::FloodDepth => meshes::ramp(
                    srgb(235, 235, 235, 1.0),
                    srgb(20, 70, 190, 1.0),
                    (v / 0.5) as f32,
                ),
                BuildingColour::Exposure => meshes::ramp(
                    srgb(235, 235, 235, 1.0),
                    srgb(200, 20, 20, 1.0),
                    if max > 0.0 { (v / max) as f32 } else { 0.0 },
                ),
            }
        };
        // Tiles in a fixed order, so each keeps its slot from one recolouring to the next.
        let mut tiles: BTreeMap<(i64, i64), Vec<super::city::BuildingGeom>> = BTreeMap::new();
        for b in &city.buildings {
            let key = (
                (b.centroid_m.x / TILE_M).floor() as i64,
                (b.centroid_m.y / TILE_M).floor() as i64,
            );
            tiles.entry(key).or_default().push(b.clone());
        }
        let lit = state.lit.clone();
        for (k, list) in tiles.values().enumerate() {
            let mesh = to_mesh(meshes::buildings_mesh(list, origin, colour));
            let mut slot = state.buildings.get(k).cloned();
            put_mesh(
                &mut slot,
                mesh,
                &lit,
                layers.buildings,
                &mut commands,
                &mut meshes,
            );
            if k >= state.buildings.len() {
                state.buildings.extend(slot);
            }
        }
    }
    // Layers on and off.
    let mut set = |e: Entity, on: bool| {
        if let Ok(mut v) = parts.visibility.get_mut(e) {
            let want = shown(on);
            if *v != want {
                *v = want;
            }
        }
    };
    for &(e, what) in &state.statics {
        let on = match what {
            "terrain" => layers.terrain,
            "roads" => layers.roads,
            _ => layers.markers,
        };
        set(e, on);
    }
    for e in state.vehicles.values() {
        set(*e, layers.vehicles);
    }
    for lamps in state.signals.values() {
        for e in lamps {
            set(*e, layers.signals);
        }
    }
    if let Some((e, _)) = state.water {
        set(e, layers.water);
    }
    if let Some((e, _)) = state.air {
        set(e, layers.air);
    }
    for (e, _) in &state.buildings {
        set(*e, layers.buildings);
    }
    state.now = now;
}

/// The plugin that draws a [`ViewCity`] from a [`Playback`] (both inserted by the caller).
pub struct CityViewPlugin;

impl Plugin for CityViewPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<ViewState>()
            .init_resource::<Layers>()
            .add_systems(Startup, setup_city)
            .add_systems(PostUpdate, sync_view.before(TransformSystems::Propagate));
    }
}
