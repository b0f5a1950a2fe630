"""Headless Chromium on the demo page with real people in front of the camera (the learned engine):
runs inside the test's network namespace and prints a JSON report.

python -m tests.helpers.browser_people URL --camera group.y4m --points points.json --screenshot page.png

The fake camera plays a still group photo; points.json holds one point on each face (left to right) and
background points, as fractions of the picture. The report holds pixel samples of the processed <video>
once it shows the people on the keyed background, the person a click on the first face selects, and the
samples once that person alone is hidden.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.helpers.browser_client import (
    MAGENTA,
    browser,
    click,
    grab,
    print_report,
    server_peers,
    shows_processed_video,
    wait,
)
from tests.helpers.fake_camera import ScenePoints, near


def run(url: str, camera: str, points: ScenePoints, screenshot: str, report: dict[str, Any]) -> None:
    def first_hidden(samples: dict[str, list]) -> bool:
        return near(samples["people"][0], MAGENTA) and not any(near(c, MAGENTA) for c in samples["people"][1:])

    wait(lambda: server_peers(url), lambda peers: True)  # the server is up
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(camera, profile)
        try:
            driver.get(url)
            report["first"], report["first_s"] = wait(lambda: grab(driver, points), shows_processed_video)
            click(driver, points.people[0])
            legend = driver.find_element(By.ID, "selection")
            report["selected"], _ = wait(lambda: legend.get_attribute("data-track"))
            report["selection_text"] = legend.text
            Select(driver.find_element(By.CSS_SELECTOR, "#person .effect")).select_by_value("hide")
            report["hidden"], report["hidden_s"] = wait(lambda: grab(driver, points), first_hidden)
            driver.save_screenshot(screenshot)
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--camera", required=True, help="the fake camera's .y4m file")
    parser.add_argument("--points", required=True, help="JSON: {people: [[fx, fy], ...], background: [...]}")
    parser.add_argument("--screenshot", required=True, help="where to save a screenshot of the page at the end")
    args = parser.parse_args()
    with open(args.points) as f:
        points = ScenePoints(**json.load(f))
    print_report(lambda report: run(args.url, args.camera, points, args.screenshot, report))


if __name__ == "__main__":
    main()
