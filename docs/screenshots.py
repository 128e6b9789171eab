"""The README's screenshots of a quick start: its classifier search report and the MLflow UI on that search.

Run in the folder where `mritune quickstart --fast` ran (it needs Debian's chromium + chromium-driver and the dev
extra's selenium):

    python /path/to/mritune/docs/screenshots.py --out /path/to/mritune/docs/img

It starts `mlflow ui` on a free 127.0.0.1 port for ./mlruns.db, takes the two screenshots, and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STATE_FILE = "mritune_search.json"


def _wait(condition, *, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/health", timeout=2).ok
    except requests.exceptions.RequestException:
        return False


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--search", default="classifier-quick")
    args = parser.parse_args()
    folder = sorted(p for p in Path("ray_results").glob(f"{args.search}-*") if (p / STATE_FILE).is_file())[-1]
    state = json.loads((folder / STATE_FILE).read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).parent / "mlflow"
    ui = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", state["tracking_uri"], "--host", "127.0.0.1",
                           "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    browser = _browser()
    try:
        browser.get((folder / "report" / "report.html").resolve().as_uri())
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1300, min(height + 100, 6000))
        browser.save_screenshot(str(args.out / "search_report.png"))
        browser.set_window_size(1300, 700)
        _wait(lambda: _healthy(url), timeout_s=240, what="mlflow ui")
        browser.get(f"{url}/#/experiments/{state['experiment_id']}?workflowType=machine_learning")
        from selenium.webdriver.common.by import By

        parent_name = state["spec"]["name"]
        parent = _wait(lambda: browser.find_elements(By.XPATH, f"//*[text()='{parent_name}']"), timeout_s=120,
                       what="the search's run")[0]
        if not browser.find_elements(By.XPATH, "//*[starts-with(text(), '#1 ')]"):
            buttons = browser.find_elements(By.CSS_SELECTOR, "[role='row'] button, [role='gridcell'] button")
            [b for b in buttons if b.is_displayed() and abs(b.location["y"] - parent.location["y"]) < 20][0].click()
        _wait(lambda: browser.find_elements(By.XPATH, "//*[starts-with(text(), '#1 ')]"), timeout_s=60,
              what="the trial runs")
        browser.save_screenshot(str(args.out / "mlflow_ui.png"))
    finally:
        browser.quit()
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    print(f"wrote {args.out / 'search_report.png'} and {args.out / 'mlflow_ui.png'}")


if __name__ == "__main__":
    main()
