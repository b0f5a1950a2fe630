"""Drives Debian's Chromium (headless, through chromedriver) against the demo page; runs inside the
test's network namespace and prints a JSON report.

python -m tests.helpers.browser_client URL --camera scene.y4m --background orange.png

The fake camera plays the still synthetic scene. The report holds pixel samples of the processed
<video> (drawn into a canvas) after each step: connected, a person clicked and tinted with everyone
else hidden, a background uploaded; the page's messages when the server is full, the camera is denied
or the server cannot be reached; and the server's peer count after the page is closed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
import urllib.request
from typing import Any, Callable

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.helpers.fake_camera import ScenePoints, near, scene_points

MAGENTA, GREEN, ORANGE = (255, 0, 255), (0, 255, 0), (0, 140, 255)  # BGR
WAIT_S = 40.0
GLASS = "glass-to-glass ms (estimate)"
STATS = """return Object.fromEntries([...document.querySelectorAll("#stats dt")]
  .map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));"""

GRAB = """
const [groups] = arguments;
const video = document.getElementById("processed");
if (!video.videoWidth || video.readyState < 2) return null;
const canvas = document.createElement("canvas");
canvas.width = video.videoWidth;
canvas.height = video.videoHeight;
const context = canvas.getContext("2d");
context.drawImage(video, 0, 0);
const at = ([fx, fy]) => {
  const x = Math.floor(fx * canvas.width) - 2, y = Math.floor(fy * canvas.height) - 2;
  const data = context.getImageData(x, y, 5, 5).data;
  const mean = [0, 1, 2].map((c) => {
    let sum = 0;
    for (let i = c; i < data.length; i += 4) sum += data[i];
    return Math.round(sum / 25);
  });
  return [mean[2], mean[1], mean[0]];
};
return Object.fromEntries(Object.entries(groups).map(([name, points]) => [name, points.map(at)]));
"""


def browser(camera: str, profile: str, allow_camera: bool = True) -> webdriver.Chrome:
    """Chromium whose camera is the .y4m file; its permission prompt is answered yes, or no."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    answer = "--use-fake-ui-for-media-stream" if allow_camera else "--deny-permission-prompts"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", answer,
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}",
                 f"--user-data-dir={profile}", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 "--disable-features=WebRtcHideLocalIpsWithMdns"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def grab(driver, points: ScenePoints) -> dict[str, list] | None:
    """Samples of the people and of the background, all from ONE picture of the processed video (one
    drawImage); None while the video has no picture yet. Two draws could sample two pictures: as its first
    frame arrives, Chromium's <video> draws all black for a moment (ready, sized, but not painted yet), and the
    people of that black with the background of the next picture look like black people on the keyed background."""
    return driver.execute_script(GRAB, {"people": points.people, "background": points.background})


def shows_processed_video(samples: dict[str, list]) -> bool:
    """The keyed background is in place and the people are shown (the first frame shows nobody yet:
    a person is confirmed after a second sighting)."""
    return all(near(c, MAGENTA) for c in samples["background"]) and not any(near(c, MAGENTA) for c in samples["people"])


def click(driver: webdriver.Chrome, point: tuple[float, float]) -> None:
    """Click the processed video at a point given as fractions of its picture (the picture is letterboxed
    in the element)."""
    video = driver.find_element(By.ID, "processed")
    width, height, video_width, video_height = driver.execute_script(
        "const v = arguments[0], r = v.getBoundingClientRect(); "
        "return [r.width, r.height, v.videoWidth, v.videoHeight];",
        video)
    scale = min(width / video_width, height / video_height)
    fx, fy = point
    ActionChains(driver).move_to_element_with_offset(
        video, round((fx - 0.5) * video_width * scale), round((fy - 0.5) * video_height * scale)).click().perform()


def wait(probe: Callable[[], Any], accept: Callable[[Any], bool] = bool) -> tuple[Any, float]:
    """The probe's value once `accept` takes it (or its last value after WAIT_S), and the seconds waited."""
    start = time.monotonic()
    value = None
    while time.monotonic() - start < WAIT_S:
        value = probe()
        if value is not None and accept(value):
            break
        time.sleep(0.2)
    return value, round(time.monotonic() - start, 2)


def server_peers(url: str) -> int | None:
    """The server's peer count; None while it is not answering (still starting)."""
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=5) as response:
            return json.load(response)["peers"]
    except OSError:
        return None


def message(driver: webdriver.Chrome) -> str | None:
    box = driver.find_element(By.ID, "message")
    return box.text or None if box.is_displayed() else None


def run(url: str, camera: str, background: str, report: dict[str, Any]) -> None:
    """Fills `report` step by step, so a failing step still leaves what came before it."""
    points = scene_points()
    report["peers_at_start"], _ = wait(lambda: server_peers(url), lambda n: True)
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(camera, profile)
        try:
            def frame() -> dict[str, list] | None:
                return grab(driver, points)

            driver.get(url)
            report["first"], report["first_s"] = wait(frame, shows_processed_video)
            if report["first"] is None:  # say so, rather than fail on a video of size 0 below
                raise RuntimeError(f"the processed video showed no picture within {WAIT_S:.0f} s")

            click(driver, points.people[0])
            legend = driver.find_element(By.ID, "selection")
            report["selected"], _ = wait(lambda: legend.get_attribute("data-track"))
            report["selection_text"] = legend.text

            person = driver.find_element(By.ID, "person")
            driver.execute_script("arguments[0].querySelector('.tint').value = '#00ff00';"
                                  "arguments[0].querySelector('.strength').value = '1';", person)
            Select(person.find_element(By.CLASS_NAME, "effect")).select_by_value("tint")
            Select(driver.find_element(By.CSS_SELECTOR, "#others .effect")).select_by_value("hide")
            report["effects"], report["effects_s"] = wait(frame, lambda s: near(s["people"][0], GREEN)
                                                          and near(s["people"][1], MAGENTA))

            driver.find_element(By.ID, "background-file").send_keys(background)
            report["uploaded"], report["uploaded_s"] = wait(
                frame, lambda s: all(near(c, ORANGE) for c in s["background"]))
            report["upload_message"] = message(driver)
            report["stats"], _ = wait(lambda: driver.execute_script(STATS),
                                      lambda stats: stats.get(GLASS, "–") != "–")
            report["peers_connected"] = server_peers(url)

            demo = driver.current_window_handle
            driver.switch_to.new_window("tab")
            driver.get(url)
            report["busy_message"], _ = wait(lambda: message(driver))
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/status"]})
            driver.get(url)
            report["unreachable_message"], _ = wait(lambda: message(driver))
            driver.close()

            driver.switch_to.window(demo)
            driver.switch_to.new_window("tab")
            driver.switch_to.window(demo)
            driver.close()  # the demo page goes away; the blank tab keeps the browser open
            report["peers_after_close"], report["close_s"] = wait(lambda: server_peers(url), lambda n: n == 0)
        finally:
            driver.quit()
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(camera, profile, allow_camera=False)
        try:
            driver.get(url)
            report["denied_message"], _ = wait(lambda: message(driver))
            report["peers_when_denied"] = server_peers(url)
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--camera", required=True, help="the fake camera's .y4m file")
    parser.add_argument("--background", required=True, help="an image to upload as the background")
    args = parser.parse_args()
    print_report(lambda report: run(args.url, args.camera, args.background, report))


def print_report(steps: Callable[[dict[str, Any]], None]) -> None:
    """Print as JSON what `steps` put in the report, with the traceback of a step that failed."""
    report: dict[str, Any] = {}
    try:
        steps(report)
    except Exception:
        report["error"] = traceback.format_exc()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
