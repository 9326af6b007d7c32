#!/usr/bin/env python3
"""Build the sample district's SUMO network and morning-peak demand from data/sample/*.geojson.

Run with the reference venv's python (it has SUMO 1.28's netconvert, randomTrips and duarouter):
    "$(../shared/scripts/ref_venv.sh)/bin/python" data/sample/traffic/generate.py
Writes data/sample/traffic/{district.net.xml, district.rou.xml}. Deterministic (seed 42).
Intersections with a signal in the GeoJSON become traffic lights; netconvert writes their
programs. Lanes in the GeoJSON are per direction; two-way streets get an edge each way.
"""
import json, os, subprocess, sys, tempfile

here = os.path.dirname(os.path.abspath(__file__))
sample = os.path.dirname(here)
bindir = os.path.dirname(sys.executable)
import sumo  # the eclipse-sumo package of the reference venv

tools = os.path.join(os.path.dirname(sumo.__file__), "tools")
os.environ["SUMO_HOME"] = os.path.dirname(sumo.__file__)
os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]

nodes = json.load(open(os.path.join(sample, "intersections.geojson")))["features"]
roads = json.load(open(os.path.join(sample, "roads.geojson")))["features"]

with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "n.nod.xml"), "w") as f:
        f.write("<nodes>\n")
        for n in nodes:
            p = n["properties"]
            lon, lat = n["geometry"]["coordinates"]
            kind = "traffic_light" if p.get("signal") else "priority"
            f.write(f'  <node id="{p["id"]}" x="{lon:.8f}" y="{lat:.8f}" type="{kind}"/>\n')
        f.write("</nodes>\n")
    with open(os.path.join(tmp, "e.edg.xml"), "w") as f:
        f.write("<edges>\n")
        for r in roads:
            p = r["properties"]
            speed = p["maxspeed"] / 3.6
            name = p["name"].replace('"', "")
            f.write(f'  <edge id="{p["id"]}" from="{p["from"]}" to="{p["to"]}" numLanes="{p["lanes"]}" speed="{speed:.2f}" name="{name}"/>\n')
            if p.get("oneway", "no") != "yes":
                f.write(f'  <edge id="-{p["id"]}" from="{p["to"]}" to="{p["from"]}" numLanes="{p["lanes"]}" speed="{speed:.2f}" name="{name}"/>\n')
        f.write("</edges>\n")
    net = os.path.join(here, "district.net.xml")
    subprocess.run([os.path.join(bindir, "netconvert"), "-n", os.path.join(tmp, "n.nod.xml"),
                    "-e", os.path.join(tmp, "e.edg.xml"), "--proj.plain-geo", "--proj.utm",
                    "--no-turnarounds", "--tls.default-type", "actuated", "-o", net], check=True)
    trips = os.path.join(tmp, "t.trips.xml")
    subprocess.run([sys.executable, os.path.join(tools, "randomTrips.py"), "-n", net, "-o", trips,
                    "-r", os.path.join(here, "district.rou.xml"), "--seed", "42", "-e", "3600",
                    "-p", "2.4", "--fringe-factor", "5", "--min-distance", "250",
                    "--trip-attributes", 'departLane="best" departSpeed="max"'], check=True)
