//! Bad networks and demand get errors that name the file, the line and the element.

mod common;

use std::path::Path;

use citytwin_traffic::{Demand, Network};
use common::*;

fn net_err(xml: &str) -> String {
    Network::from_sumo_str(Path::new("bad.net.xml"), xml)
        .expect_err("the network must be refused")
        .to_string()
}

fn rou_err(xml: &str) -> String {
    let net = net_from(&straight_net(100.0, 100.0, 13.89, None));
    let mut d = Demand::new();
    d.read_sumo_str(Path::new("bad.rou.xml"), xml, &net)
        .expect_err("the routes must be refused")
        .to_string()
}

#[test]
fn malformed_xml_names_the_line() {
    let e = net_err("<net>\n  <edge id=\"a\" from=\"x\" to=\"y\">\n    <lane id=\"a_0\"\n</net>\n");
    assert!(e.starts_with("bad.net.xml:3: <lane>"), "{e}");
    let e = net_err("<net>\n  <edge id=\"a\" from=\"x\" to=\"y\">\n</nett>\n");
    assert!(
        e.starts_with("bad.net.xml:3:") && e.contains("malformed XML"),
        "{e}"
    );
    let e = net_err("<routes/>");
    assert!(e.contains("expected a SUMO network"), "{e}");
}

#[test]
fn an_inconsistent_network_names_the_element() {
    let good = straight_net(100.0, 100.0, 13.89, None);
    // a connection to an edge that does not exist
    let bad = good.replace(
        r#"<connection from="in" to="out""#,
        r#"<connection from="in" to="nowhere""#,
    );
    let e = net_err(&bad);
    assert!(
        e.contains("edge 'nowhere'") && e.contains("<connection"),
        "{e}"
    );
    assert!(e.starts_with("bad.net.xml:"), "{e}");
    // a lane with a negative speed
    let bad = good.replace(
        r#"<lane id="in_0" index="0" speed="13.89""#,
        r#"<lane id="in_0" index="0" speed="-3""#,
    );
    let e = net_err(&bad);
    assert!(
        e.contains("<lane id=\"in_0\">") && e.contains("positive"),
        "{e}"
    );
    // an edge between undefined junctions
    let bad = good.replace(r#"<edge id="in" from="A""#, r#"<edge id="in" from="Q""#);
    let e = net_err(&bad);
    assert!(e.contains("junction 'Q'"), "{e}");
    // a signal program with an unknown state letter
    let bad = straight_net(100.0, 100.0, 13.89, Some(&[("G", 30.0), ("x", 30.0)]));
    let e = net_err(&bad);
    assert!(e.contains("state letter 'x'"), "{e}");
    // a link index beyond the controller's links
    let bad = straight_net(100.0, 100.0, 13.89, Some(&[("G", 30.0), ("r", 30.0)]))
        .replace(r#"linkIndex="0""#, r#"linkIndex="4""#);
    let e = net_err(&bad);
    assert!(e.contains("linkIndex 4"), "{e}");
}

#[test]
fn bad_demand_names_the_vehicle_and_what_is_wrong() {
    let e = rou_err(
        r#"<routes><vehicle id="v1" depart="0"><route edges="in nowhere"/></vehicle></routes>"#,
    );
    assert!(e.contains("edge 'nowhere' is not in the network"), "{e}");
    assert!(e.starts_with("bad.rou.xml:1:"), "{e}");
    let e = rou_err(
        "<routes>\n<vehicle id=\"v2\" depart=\"0\"><route edges=\"out in\"/></vehicle></routes>",
    );
    assert!(
        e.starts_with("bad.rou.xml:2:") && e.contains("not connected"),
        "{e}"
    );
    let e = rou_err(r#"<routes><vehicle id="v3" depart="soon" route="r"/></routes>"#);
    assert!(e.contains("route 'r'"), "{e}");
    let e = rou_err(
        r#"<routes><vehicle id="v4" depart="soon"><route edges="in out"/></vehicle></routes>"#,
    );
    assert!(e.contains("depart=\"soon\""), "{e}");
    let e = rou_err(
        r#"<routes><vehicle id="v5" type="lorry" depart="0"><route edges="in out"/></vehicle></routes>"#,
    );
    assert!(e.contains("vType 'lorry'"), "{e}");
    let e = rou_err(r#"<routes><vType id="t" accel="-1"/></routes>"#);
    assert!(e.contains("accel") && e.contains("negative"), "{e}");
    let e = rou_err(r#"<routes><person id="p" depart="0"/></routes>"#);
    assert!(e.contains("not supported"), "{e}");
    let e = rou_err(r#"<routes><flow id="f" begin="0" from="in" to="out"/></routes>"#);
    assert!(e.contains("period, vehsPerHour"), "{e}");
}

#[test]
fn the_shared_networks_load_with_their_parts() {
    let base = shared().join("traffic");
    let net = Network::from_sumo_file(&base.join("grid10/grid10.net.xml")).unwrap();
    // netgenerate's 10×10 grid with 200 m attachments: 100 signalised junctions.
    assert_eq!(net.signals.len(), 100);
    assert!(
        net.links
            .iter()
            .all(|l| l.signal.is_some() || net.junctions[l.junction as usize].signal.is_none())
    );
    let hel = Network::from_sumo_file(&base.join("helsinki/helsinki.net.xml")).unwrap();
    assert_eq!(
        hel.signals.len(),
        35,
        "35 traffic lights, as netconvert reported"
    );
    assert!(
        hel.links.iter().any(|l| l.wait_pos_m.is_some()),
        "left turns wait inside junctions"
    );
    assert!(
        hel.links.iter().any(|l| !l.yields_to.is_empty()),
        "priority junctions have yielding links"
    );
    let e = Network::from_sumo_file(&base.join("helsinki/missing.net.xml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.net.xml") && e.contains("cannot read"),
        "{e}"
    );
}
