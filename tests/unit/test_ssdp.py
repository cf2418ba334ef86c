"""SSDP answers and GX device descriptions: what counts as a GX, what its portal id is."""

from __future__ import annotations

from collector.simulator.ssdp import description_xml
from collector.ssdp import FoundGx, is_gx, m_search, parse_description, parse_response


def test_when_a_gx_answers_then_its_headers_name_it_and_its_description_gives_the_portal_id() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLocation: http://192.0.2.7:80/desc.xml\r\n"
        b"ST: urn:schemas-upnp-org:device:Basic:1\r\nUSN: uuid:com.victronenergy.ccgx-HQ1::upnp:rootdevice\r\n\r\n"
    )
    headers = parse_response(answer)
    assert headers is not None and is_gx(headers) and headers["LOCATION"] == "http://192.0.2.7:80/desc.xml"
    found = parse_description(description_xml("c0619ab1f2e3", "Cerbo GX", "HQ2207XYZ"), "192.0.2.7")
    assert found == FoundGx("192.0.2.7", "c0619ab1f2e3", "Cerbo GX", "Cerbo GX", "HQ2207XYZ")


def test_when_not_a_gx_or_no_portal_id_then_nothing_found() -> None:
    router = b"HTTP/1.1 200 OK\r\nLOCATION: http://192.0.2.1/igd.xml\r\nUSN: uuid:1234::upnp:rootdevice\r\n\r\n"
    headers = parse_response(router)
    assert headers is not None and not is_gx(headers)
    assert parse_response(m_search()) is None  # another client's search is not an answer
    no_portal = b'<root xmlns="urn:schemas-upnp-org:device-1-0"><device><friendlyName>x</friendlyName></device></root>'
    assert parse_description(no_portal, "192.0.2.1") is None
    assert parse_description(b"<not xml", "192.0.2.1") is None
