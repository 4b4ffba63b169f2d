"""Fetch a web page and pull out what matters: title, description, headings, links, text.

Shipped with python-mcp (read-only; save a copy under another name to change it). Uses requests
and BeautifulSoup (lxml parser).

    run_script fetch_page.py args=[URL...]      prints a summary of each page
    run_script fetch_page.py                    prints this help

In a persistent session afterwards:
    page = fetch_page('https://example.org')    a dict: url, status, title, description,
                                                headings, links (absolute), text, words
    parse_page(html, base_url)                  the same from HTML you already have
"""
import sys
from urllib.parse import urljoin

import requests
from bs4 import BeautifulSoup


def parse_page(html, base_url=""):
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    meta = soup.find("meta", attrs={"name": "description"})
    headings = [{"level": int(h.name[1]), "text": h.get_text(" ", strip=True)}
                for h in soup.find_all(["h1", "h2", "h3"])]
    links, seen = [], set()
    for a in soup.find_all("a", href=True):
        href = urljoin(base_url, a["href"])
        if href not in seen:
            seen.add(href)
            links.append({"href": href, "text": a.get_text(" ", strip=True)})
    text = " ".join(soup.get_text(" ", strip=True).split())
    return {"title": soup.title.get_text(strip=True) if soup.title else "",
            "description": meta.get("content", "") if meta else "",
            "headings": headings, "links": links, "text": text, "words": len(text.split())}


def fetch_page(url, timeout=20):
    response = requests.get(url, timeout=timeout, headers={"User-Agent": "python-mcp fetch_page"})
    page = parse_page(response.text, response.url)
    page.update(url=response.url, status=response.status_code)
    return page


def summary(page, links=10):
    lines = [f"{page['url']} -> HTTP {page['status']}", f"title: {page['title']}"]
    if page["description"]:
        lines.append(f"description: {page['description']}")
    for h in page["headings"][:15]:
        lines.append("  " * (h["level"] - 1) + f"h{h['level']} {h['text']}")
    lines.append(f"{len(page['links'])} links, {page['words']} words")
    for link in page["links"][:links]:
        lines.append(f"  {link['text'][:40]!r}: {link['href']}")
    return "\n".join(lines)


def main(argv):
    if not argv:
        print(__doc__)
        return
    for url in argv:
        print(summary(fetch_page(url)))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
