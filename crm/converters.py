"""Path converters shared by the apps' URL confs; importing this module registers them."""

from django.urls import register_converter


class IdConverter:
    """An integer id. Any integer matches, so a negative or huge one reaches the view and gets
    the API's JSON 404 (the view checks the range) instead of Django's HTML page."""

    regex = "-?[0-9]{1,40}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")
