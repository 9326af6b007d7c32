//! # citytwin-flood
//!
//! Flooding: rain on the DEM and 2D overland flow. This first part is the surface —
//! [`surface`], the local-inertial scheme of LISFLOOD-FP with wet/dry fronts, Manning friction,
//! blocked cells for buildings, Horton infiltration, closed, free-outflow and fixed-level edges,
//! point inflows and a volume balance. The 1D drainage network (SWMM `.inp`, dynamic wave), its
//! coupling to the surface and the scene module come next (issue #4).

pub mod surface;

pub use surface::{Balance, Edge, Edges, Horton, Surface};
