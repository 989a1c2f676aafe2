"""The web portal: server-rendered pages in Indonesian and English that work without JavaScript."""

from __future__ import annotations

import logging
import math
import textwrap
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import (FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response,
                               StreamingResponse)
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select

from catalog.access import AccessDenied, access_to, listed
from catalog.db import Dataset, Run, session
from catalog.identity import (COOKIE, AuthenticationError, Identity, TooManyAttempts, authenticate, client_of,
                              may_see_agency)
from hub.errors import Busy, ConfigError, HubError, QueryError
from hub.followed import BrokenFile, Followed, Problem
from serving.dashboard import LABELS as HOME_LABELS
from serving.downloads import described
from serving.numbers import file_size, number
from serving.site import site

__all__ = ["LABELS", "LANGUAGES", "problem_page", "router"]

log = logging.getLogger(__name__)

LANGUAGES = ("id", "en")
PAGE_SIZE = 10
PREVIEW_ROWS = 20
SQL_PAGE_ROWS = 1000
QUARANTINE_PAGE_ROWS = 100
ACCESS_PAGE_ROWS = 500  # the newest; `hub audit who-accessed` and the API give them all
EXCHANGE_PAGE_CALLS = 200  # the newest calls of an agency's services; `hub audit` gives them all
SIGN_IN_SECONDS = 8 * 3600  # how long the portal's sign-in cookie lasts (the token's own expiry still holds)
_STATIC = Path(__file__).parent / "static"
_TEMPLATES = Path(__file__).parent / "templates" / "portal"

# Every label of the portal: key -> (Indonesian, English). One line per label keeps the two languages in step.
LABELS = {
    "site": ("Portal Data Kota Bogor", "Kota Bogor Data Portal"),
    "skip": ("Langsung ke isi", "Skip to content"),
    "nav_search": ("Cari data", "Find data"),
    "nav_sql": ("Kueri SQL", "SQL query"),
    "nav_agencies": ("Instansi", "Agencies"),
    "nav_api": ("Dokumentasi API", "API documentation"),
    "switch_language": ("English", "Bahasa Indonesia"),
    "footer": ("Data terbuka Kota Bogor menurut Satu Data Indonesia (Perpres 39/2019).",
               "Kota Bogor's data, published under Satu Data Indonesia (Presidential Regulation 39/2019)."),
    "not_found": ("Halaman tidak ditemukan", "Page not found"),
    "no_dataset": ("Tidak ada dataset bernama", "There is no dataset named"),
    "no_agency": ("Tidak ada instansi berkode", "There is no agency with the code"),
    "back_home": ("Kembali ke beranda", "Back to the home page"),
    "unavailable": ("Halaman tidak dapat ditampilkan", "The page cannot be shown"),
    "standard_problem": ("Standar data atau daftar kode tidak dapat dimuat:",
                         "A standard could not be loaded:"),
    "standard_problem_kept": ("Halaman ini memakai versi terakhir yang berhasil dimuat. Walidata perlu memperbaiki "
                              "berkasnya (hub standards check, hub codelists check).",
                              "This page uses the last version that loaded. The walidata needs to fix the file "
                              "(hub standards check, hub codelists check)."),
    "standard_problem_none": ("Belum ada versi yang berhasil dimuat, jadi halaman ini tidak dapat ditampilkan sampai "
                              "walidata memperbaiki berkasnya.",
                              "No version of it has loaded yet, so this page cannot be shown until the walidata "
                              "fixes the file."),
    "config_problem": ("Konfigurasi hub bermasalah; walidata dapat melihat rinciannya di log server.",
                       "The hub's configuration has a problem; the walidata can see it in the server's log."),
    "line": ("baris", "line"),
    "column": ("kolom", "column"),
    # search
    "search_title": ("Cari dataset", "Find datasets"),
    "search_label": ("Kata pencarian", "Search words"),
    "search_hint": ("Judul, deskripsi, kata kunci atau nama kolom", "Title, description, tags or field names"),
    "search_button": ("Cari", "Search"),
    "sort": ("Urutkan", "Sort by"),
    "sort_relevance": ("Relevansi", "Relevance"),
    "sort_title": ("Judul", "Title"),
    "sort_modified": ("Terbaru", "Most recent"),
    "filters": ("Saring", "Filter"),
    "facet_agency": ("Instansi", "Agency"),
    "facet_standard": ("Standar data", "Data standard"),
    "facet_tag": ("Kata kunci", "Tag"),
    "facet_classification": ("Klasifikasi", "Classification"),
    "facet_topic": ("Topik", "Topic"),
    "facet_kind": ("Jenis dataset", "Kind of dataset"),
    "hidden_harmonized": ("{n} dataset per instansi (salinan tiap instansi dari data yang sama) tidak ditampilkan.",
                          "{n} per-agency datasets (each agency's copy of the same data) are not shown."),
    "show_harmonized": ("Tampilkan", "Show them"),
    "also_searched": ("Juga dicari:", "Also searched for:"),
    "home_spotlight": ("Sekilas Kota Bogor", "Kota Bogor at a glance"),
    "clear_filters": ("Hapus semua saringan", "Clear all filters"),
    "results_count": ("dataset ditemukan", "datasets found"),
    "no_results": ("Tidak ada dataset yang cocok.", "No dataset matches."),
    "previous": ("Sebelumnya", "Previous"),
    "next": ("Berikutnya", "Next"),
    "page": ("Halaman", "Page"),
    "of": ("dari", "of"),
    "selected": ("terpilih", "selected"),
    # dataset facts
    "agency": ("Instansi", "Agency"),
    "standard": ("Standar", "Standard"),
    "classification": ("Klasifikasi", "Classification"),
    "last_update": ("Pembaruan terakhir", "Last update"),
    "rows": ("Baris", "Rows"),
    "quality": ("Kualitas", "Quality"),
    "kind": ("Jenis", "Kind"),
    "all_agencies": ("seluruh instansi", "all agencies"),
    # dataset page
    "contents": ("Isi halaman", "On this page"),
    "sec_metadata": ("Metadata", "Metadata"),
    "sec_dictionary": ("Kamus data", "Data dictionary"),
    "sec_quality": ("Kualitas data", "Data quality"),
    "sec_lineage": ("Silsilah data", "Lineage"),
    "sec_versions": ("Versi", "Versions"),
    "sec_preview": ("Pratinjau", "Preview"),
    "sec_downloads": ("Unduh", "Download"),
    "sec_api": ("Contoh pemanggilan API", "Example API calls"),
    "walidata": ("Walidata", "Data steward (walidata)"),
    "produsen_data": ("Produsen data", "Data producers"),
    "license": ("Lisensi", "Licence"),
    "frequency": ("Frekuensi pembaruan", "Update frequency"),
    "spatial_coverage": ("Cakupan wilayah", "Spatial coverage"),
    "temporal_coverage": ("Cakupan waktu", "Temporal coverage"),
    "tags": ("Kata kunci", "Tags"),
    "issued": ("Pertama terbit", "First issued"),
    "table": ("Tabel", "Table"),
    "sql_name": ("Nama di SQL", "Name in SQL"),
    "primary_key": ("Kunci utama", "Primary key"),
    "current_snapshot": ("Snapshot saat ini", "Current snapshot"),
    "field": ("Kolom", "Field"),
    "title": ("Judul", "Title"),
    "description": ("Deskripsi", "Description"),
    "type": ("Tipe", "Type"),
    "required": ("Wajib", "Required"),
    "personal_data": ("Data pribadi", "Personal data"),
    "rules": ("Aturan", "Rules"),
    "code_list": ("Daftar kode", "Code list"),
    "codes": ("kode", "codes"),
    "yes": ("ya", "yes"),
    "no": ("tidak", "no"),
    "masked": ("disamarkan", "masked"),
    "full_dictionary": ("Kamus data lengkap (HTML, dua bahasa)", "The full data dictionary (HTML, bilingual)"),
    "quality_score": ("Skor kualitas", "Quality score"),
    "last_run": ("Proses terakhir", "Last run"),
    "rows_in": ("Baris masuk", "Rows in"),
    "rows_published": ("Baris terbit", "Rows published"),
    "rows_quarantined": ("Baris dikarantina", "Rows quarantined"),
    "rows_repeated": ("Baris berulang", "Rows repeated"),
    "repeated_note": ("Baris yang sama persis dengan baris lain yang diterbitkan, diterbitkan sekali; nomor baris "
                      "ulangannya:", "Rows identical to another published row, published once; the repeats' row "
                      "numbers:"),
    "validation": ("Hasil validasi Great Expectations", "Great Expectations validation results"),
    "validation_note": ("Setiap ekspektasi dari suite yang dikompilasi dari standar, seperti Data Docs Great "
                        "Expectations menampilkannya, untuk proses terakhir.",
                        "Each expectation of the suite compiled from the standard, as Great Expectations Data "
                        "Docs show it, for the last run."),
    "suite": ("Suite", "Suite"),
    "data_docs": ("Data Docs Great Expectations", "Great Expectations Data Docs"),
    "status": ("Status", "Status"),
    "expectation": ("Ekspektasi", "Expectation"),
    "rule": ("Aturan", "Rule"),
    "reason_code": ("Kode alasan", "Reason code"),
    "checked": ("Diperiksa", "Checked"),
    "unexpected": ("Tidak sesuai", "Unexpected"),
    "passed": ("lolos", "passed"),
    "failed": ("gagal", "failed"),
    "all_passed": ("Semua ekspektasi lolos.", "Every expectation passed."),
    "some_failed": ("Sebagian ekspektasi gagal; baris yang gagal dikarantina, tidak diterbitkan.",
                    "Some expectations failed; the failing rows were quarantined, not published."),
    "integrated_quality": ("Dataset terintegrasi: skornya adalah rata-rata skor sumbernya (berbobot jumlah baris). "
                           "Masukan versi ini:",
                           "An integrated dataset: its score is the mean of its sources' scores (weighted by "
                           "rows). The inputs of this version:"),
    "no_run": ("Belum ada proses.", "No run yet."),
    "quarantine": ("Karantina menurut alasan", "Quarantine by reason"),
    "quarantine_note": ("Nilai baris yang dikarantina tidak ditampilkan: bisa memuat data pribadi.",
                        "Quarantined values are not shown: they may hold personal data."),
    "no_quarantine": ("Tidak ada baris yang dikarantina.", "No row was quarantined."),
    "lineage_note": ("Dari sistem instansi (kiri) ke dataset ini (kanan).",
                     "From the agency systems (left) to this dataset (right)."),
    "lineage_picture": ("Gambar silsilah", "Lineage picture"),
    "committed_at": ("Waktu", "Time"),
    "snapshot": ("Snapshot", "Snapshot"),
    "run": ("Proses", "Run"),
    "show_version": ("Pratinjau versi ini", "Preview this version"),
    "current": ("saat ini", "current"),
    "preview_of": ("Baris pertama dari versi", "The first rows of version"),
    "preview_filter": ("Saring (KOLOM OP NILAI)", "Filter (FIELD OP VALUE)"),
    "preview_filter_hint": ("mis. kode_wilayah=32.71.01.1001", "e.g. kode_wilayah=32.71.01.1001"),
    "preview_q": ("Teks di kolom mana pun", "Text in any field"),
    "preview_sort": ("Urutkan (kolom, - untuk menurun)", "Sort (fields, - for descending)"),
    "apply": ("Terapkan", "Apply"),
    "of_rows": ("baris cocok", "matching rows"),
    "shown": ("ditampilkan", "shown"),
    "masked_note": ("Kolom data pribadi disamarkan:", "Personal-data fields are masked:"),
    "preview_error": ("Pratinjau tidak dapat ditampilkan", "The preview cannot be shown"),
    "no_version": ("Dataset ini tidak memiliki versi", "This dataset has no version"),
    "download_note": ("Seluruh dataset versi saat ini, sebagaimana Anda boleh melihatnya: data pribadi disamarkan "
                      "atau dipseudonimkan bila Anda tidak berwenang atasnya.",
                      "The whole dataset at its current version, as you may see it: personal data masked or "
                      "pseudonymized unless you are cleared for it."),
    "pseudonym_note": ("NIK diganti pseudonimnya (sama di setiap dataset, tidak dapat dibalik):",
                       "NIKs are replaced by their pseudonyms (the same in every dataset, not reversible):"),
    "withheld_note": ("Kolom dengan klasifikasi lebih tinggi tidak ditampilkan untuk Anda:",
                      "Fields of a higher classification are withheld from you:"),
    "needs_token": ("Isi dataset ini terbatas untuk pengguna pemerintah. Masuk dengan token untuk melihat, "
                    "mengunduh atau menanyainya.",
                    "This dataset's rows are for government users. Sign in with a token to see, download or "
                    "query them."),
    "not_cleared": ("Token Anda tidak berwenang atas isi dataset ini.",
                    "Your token is not cleared for this dataset's rows."),
    # signing in
    "nav_login": ("Masuk", "Sign in"),
    "nav_logout": ("Keluar", "Sign out"),
    "signed_in_as": ("Masuk sebagai", "Signed in as"),
    "login_title": ("Masuk dengan token", "Sign in with a token"),
    "login_intro": ("Pengguna pemerintah masuk dengan token API yang diberikan walidata (hub users create). "
                    "Token disimpan dalam cookie sesi selama 8 jam dan tidak pernah ditampilkan.",
                    "Government users sign in with the API token the walidata gave them (hub users create). "
                    "The token is kept in a session cookie for 8 hours and never shown."),
    "token": ("Token API", "API token"),
    "login_button": ("Masuk", "Sign in"),
    "login_failed": ("Token tidak diterima", "The token was not accepted"),
    "login_refused": ("Masuk ditolak", "Sign-in refused"),
    # quarantine and access log (stewards and the owning agency)
    "quarantine_rows": ("Baris yang dikarantina", "Quarantined rows"),
    "see_quarantine": ("Lihat setiap baris yang dikarantina", "See each quarantined row"),
    "quarantined_of": ("baris masuk dikarantina", "rows in were quarantined"),
    "quarantine_own": ("Data instansi Anda sendiri: setiap baris ditampilkan sebagaimana dikirim, agar dapat "
                       "diperbaiki di sistem asalnya.",
                       "Your agency's own data: each row is shown as it was sent, so it can be fixed in its system."),
    "quarantine_steward": ("Nomor baris dan alasannya; nilainya hanya untuk instansi pemiliknya.",
                           "Row numbers and their reasons; the values are for the owning agency only."),
    "row": ("Baris", "Row"),
    "record": ("Data sebagaimana dikirim", "The record as sent"),
    "reasons_in_words": ("Alasan", "Reasons"),
    "export": ("Unduh baris ini untuk diperbaiki", "Download these rows to fix them"),
    "export_xlsx": ("Excel (XLSX)", "Excel (XLSX)"),
    "export_csv": ("CSV", "CSV"),
    "export_own": ("Setiap baris sebagaimana dikirim, lalu nomor baris, kode alasan dan alasannya. Perbaiki nilainya "
                   "dan kirim ulang; XLSX menyimpan setiap nilai sebagai teks (NIK tetap 16 digit), CSV memakai "
                   "pemisah titik koma dan UTF-8.",
                   "Each row as it was sent, then its row number, reason codes and reasons. Fix the values and send "
                   "them again; XLSX keeps every value as text (a NIK keeps its 16 digits), CSV uses semicolons and "
                   "UTF-8."),
    "export_steward": ("Nomor baris, kode alasan dan alasannya, tanpa nilai.",
                       "Row numbers, reason codes and reasons, without the values."),
    "no_such_run": ("Tidak ada proses bernama", "There is no run named"),
    "access_log": ("Siapa mengakses data ini", "Who accessed this data"),
    "see_access_log": ("Siapa mengakses data ini", "Who accessed this data"),
    "access_log_intro": ("Setiap pembacaan baris, unduhan dan kueri SQL atas dataset ini, dari log audit.",
                         "Every read of the rows, download and SQL query of this dataset, from the audit log."),
    "no_access": ("Belum ada yang mengakses data ini.", "Nobody has accessed this data yet."),
    "who": ("Siapa", "Who"),
    "role": ("Peran", "Role"),
    "action": ("Tindakan", "Action"),
    "from": ("Dari", "From"),
    "details": ("Rincian", "Details"),
    "owner_only": ("Halaman ini untuk walidata dan instansi pemilik data: masuk dengan token.",
                   "This page is for stewards and the agency that owns the data: sign in with a token."),
    "api_rows": ("Baris lewat API", "Rows through the API"),
    "api_sql": ("SQL lewat API", "SQL through the API"),
    "api_ckan": ("API CKAN (datastore_search, mis. untuk ckanapi)", "CKAN API (datastore_search, e.g. for ckanapi)"),
    # SQL page
    "sql_title": ("Kueri SQL", "SQL query"),
    "sql_intro": ("Satu pernyataan SELECT (DuckDB) atas dataset versi saat ini yang boleh Anda baca; nama tabel "
                  "adalah id dataset. Data pribadi disamarkan atau dipseudonimkan bila Anda tidak berwenang atasnya.",
                  "One SELECT statement (DuckDB) over the current versions of the datasets you may read; a "
                  "table's name is the dataset's id. Personal data is masked or pseudonymized unless you are "
                  "cleared for it."),
    "sql_label": ("Pernyataan SQL", "SQL statement"),
    "sql_run": ("Jalankan", "Run"),
    "sql_examples": ("Contoh kueri", "Example queries"),
    "sql_try": ("Jalankan contoh ini", "Run this example"),
    "sql_tables": ("Tabel yang tersedia", "Available tables"),
    "sql_error": ("Kueri gagal", "The query failed"),
    "sql_result": ("Hasil", "Result"),
    "sql_rows": ("baris", "rows"),
    "sql_seconds": ("detik", "seconds"),
    "sql_truncated": ("Hasil dipotong: hanya baris pertama yang ditampilkan.",
                      "The result was cut: only the first rows are shown."),
    "sql_csv": ("Unduh hasil sebagai CSV", "Download the result as CSV"),
    # agencies
    "agencies_title": ("Instansi", "Agencies"),
    "agency_sources": ("Sumber data", "Sources"),
    "agency_datasets": ("Dataset", "Datasets"),
    "source": ("Sumber", "Source"),
    "connector": ("Konektor", "Connector"),
    "schedule": ("Jadwal", "Schedule"),
    "finished_at": ("Selesai", "Finished"),
    "dataset": ("Dataset", "Dataset"),
    "never_run": ("belum pernah diproses", "never run"),
    "not_published": ("belum terbit", "not published"),
    "no_sources": ("Instansi ini belum mendaftarkan sumber.", "This agency has registered no source."),
    "run_error": ("Galat", "Error"),
    # the service bus, for a provider agency
    "exchange_title": ("Layanan pertukaran data", "Data exchange services"),
    "see_exchange": ("Layanan pertukaran data instansi ini", "This agency's data exchange services"),
    "exchange_intro": ("Layanan yang disediakan instansi ini bagi sistem instansi lain melalui hub (X-Road "
                       "PR-REST), siapa yang diberi akses dan untuk tujuan apa, dan panggilan terakhir dari log pesan.",
                       "The services this agency offers other agencies' systems through the hub (X-Road PR-REST), "
                       "who is granted each and for what purpose, and the last calls from the message log."),
    "provider_only": ("Halaman ini untuk walidata dan instansi penyedia layanan: masuk dengan token.",
                      "This page is for stewards and the agency that provides the services: sign in with a token."),
    "exchange_services": ("Layanan", "Services"),
    "exchange_grants": ("Hak akses", "Grants"),
    "exchange_calls": ("Panggilan terakhir", "Last calls"),
    "no_services": ("Instansi ini belum menyediakan layanan.", "This agency offers no service."),
    "no_grants": ("Belum ada hak akses yang diberikan.", "No grant has been given."),
    "no_calls": ("Belum ada panggilan.", "No call yet."),
    "service": ("Layanan", "Service"),
    "consumer": ("Sistem pemanggil", "Calling system"),
    "purpose": ("Tujuan", "Purpose"),
    "granted": ("Diberikan", "Granted"),
    "revoked": ("Dicabut", "Revoked"),
    "officer": ("Petugas", "Officer"),
    "duration_ms": ("Durasi (ms)", "Duration (ms)"),
    # subscriptions
    "sec_subscribe": ("Berlangganan", "Subscribe"),
    "subscribe_intro": ("Dapatkan pemberitahuan saat dataset ini memiliki versi baru atau sumbernya gagal diproses. "
                        "Pemberitahuan hanya memuat metadata dan jumlah baris, tidak pernah isi data.",
                        "Be told when this dataset gets a new version or when one of its sources fails. "
                        "Notifications carry metadata and counts only, never the data."),
    "channel": ("Saluran", "Channel"),
    "channel_email": ("E-mail", "E-mail"),
    "channel_webhook": ("Webhook (POST JSON bertanda tangan ke URL Anda)", "Webhook (a signed JSON POST to your URL)"),
    "no_email": ("hub ini tidak mengirim e-mail", "this hub sends no e-mail"),
    "target": ("Alamat e-mail atau URL webhook", "E-mail address or webhook URL"),
    "target_hint": ("mis. nama@instansi.go.id atau https://contoh.go.id/hook",
                    "e.g. name@agency.go.id or https://example.org/hook"),
    "events": ("Beri tahu saya tentang", "Tell me about"),
    "event_published": ("versi baru", "new versions"),
    "event_failed": ("kegagalan sumber", "source failures"),
    "subscribe_button": ("Berlangganan", "Subscribe"),
    "subscribe_error": ("Langganan tidak dapat dibuat", "The subscription cannot be made"),
    "check_inbox": ("Periksa kotak masuk Anda", "Check your inbox"),
    "email_sent": ("Kami mengirim surat konfirmasi ke alamat itu. Buka tautan di dalamnya dan tekan tombol "
                   "konfirmasi dalam 7 hari; sebelum itu Anda tidak menerima pemberitahuan apa pun.",
                   "We sent a confirmation mail to that address. Open its link and press the confirm button "
                   "within 7 days; until then you get no notification."),
    "webhook_active": ("Webhook aktif", "Webhook active"),
    "secret": ("Kunci penanda tangan (secret)", "Signing secret"),
    "secret_once": ("Simpan kunci ini sekarang: kunci hanya ditampilkan kali ini dan tidak dapat dilihat lagi.",
                    "Keep this secret now: it is shown only this once and cannot be shown again."),
    "verify_title": ("Cara memeriksa tanda tangan", "How to verify the signature"),
    "verify_text": ("Setiap pemberitahuan adalah POST berisi JSON. Header X-Hub-Signature-256 berisi \"sha256=\" "
                    "diikuti HMAC-SHA256 (heksadesimal) dari badan permintaan mentah, dengan kunci di atas sebagai "
                    "teks. Hitung ulang dan bandingkan sebelum memercayai isinya. X-Hub-Delivery sama pada setiap "
                    "pengulangan satu pesan: pakai untuk mengabaikan pesan ganda.",
                    "Each notification is a POST of JSON. The X-Hub-Signature-256 header holds \"sha256=\" and the "
                    "HMAC-SHA256 (hex) of the raw request body, keyed with the secret above as text. Compute it "
                    "again and compare before trusting the body. X-Hub-Delivery is the same on every retry of one "
                    "message: use it to ignore duplicates."),
    "webhook_stop": ("Untuk berhenti, kirim POST ke URL ini (juga hanya ditampilkan kali ini):",
                     "To stop, send a POST to this URL (also shown only this once):"),
    "back_to_dataset": ("Kembali ke dataset", "Back to the dataset"),
    "link_note": ("Membuka tautan saja tidak mengubah apa pun, agar pemindai surat yang membuka tautan tidak "
                  "bertindak atas nama Anda.",
                  "Opening the link alone changes nothing, so that mail scanners that open links cannot act for you."),
    "confirm_title": ("Konfirmasi langganan", "Confirm the subscription"),
    "confirm_text": ("Tekan tombol untuk mulai menerima pemberitahuan dataset ini lewat e-mail.",
                     "Press the button to start receiving this dataset's notifications by e-mail."),
    "confirm_button": ("Konfirmasi langganan", "Confirm the subscription"),
    "confirmed": ("Langganan dikonfirmasi. Setiap surat pemberitahuan memuat tautan untuk berhenti.",
                  "Subscription confirmed. Every notification mail holds a link to stop."),
    "unsubscribe_title": ("Berhenti berlangganan", "Unsubscribe"),
    "unsubscribe_text": ("Tekan tombol untuk berhenti menerima pemberitahuan; langganan dan alamat Anda dihapus.",
                         "Press the button to stop the notifications; the subscription and your address are deleted."),
    "unsubscribe_button": ("Berhenti berlangganan", "Unsubscribe"),
    "unsubscribed": ("Langganan dihentikan dan alamat Anda dihapus.", "Unsubscribed: your address was deleted."),
    "bad_token": ("Tautan ini tidak dikenal atau sudah dipakai.", "This link is unknown or was already used."),
    # charts and maps
    "sec_figures": ("Grafik dan peta", "Charts and maps"),
    "figures_note": ("Setiap grafik dan peta dihitung dari versi saat ini, sebagaimana Anda boleh melihatnya; angkanya "
                     "ada di tabel di bawahnya.",
                     "Every chart and map is computed from the current version, as you may see it; its numbers are "
                     "in the table below it."),
    "no_figures": ("Tidak ada grafik untuk dataset ini.", "There is no chart for this dataset."),
    # the preview's pages
    "first": ("Pertama", "First"),
    "rows_from_to": ("baris {a}–{b} dari {n}", "rows {a}–{b} of {n}"),
    "preview_pages": ("Halaman pratinjau", "Preview pages"),
    "filtered_download": ("Unduh baris yang cocok dengan saringan ini:", "Download the rows this filter keeps:"),
    "filtered_api": ("Halaman ini lewat API", "This page through the API"),
    "code_of": ("kode", "code"),
    # getting access
    "access_who": ("Walidata ({walidata}) memutuskan siapa yang boleh membaca isinya.",
                   "The walidata ({walidata}) decides who may read its rows."),
    "access_how": ("Untuk meminta akses, sebutkan dataset ini ({dataset}), instansi Anda dan keperluan Anda "
                   "(tujuan pemakaian dan dasar hukumnya); walidata memberikan token API bila permintaan disetujui.",
                   "To ask for access, name this dataset ({dataset}), your agency and your purpose (what the data is "
                   "for and its legal basis); the walidata gives you an API token if the request is granted."),
    "access_form": ("Isi formulir permintaan akses", "Fill in the access request form"),
    "access_email": ("Kirim e-mail ke", "Write to"),
    "access_signed": ("Sudah punya token?", "Already have a token?"),
    # kinds of dataset, in one sentence each
    "integrated_of": ("Dataset terintegrasi dari data ini:", "The integrated dataset of this data:"),
}
LABELS.update(HOME_LABELS)  # the home page's words: one catalogue for every template's `p.t`
# What each kind of dataset is, where a kind appears.
KIND_NOTES = {
    "harmonized": ("Data satu instansi, diselaraskan dengan standar data. Untuk data seluruh kota, pakai dataset "
                   "terintegrasinya.",
                   "One agency's data, harmonized to the data standard. For the whole city's data, use the "
                   "integrated dataset."),
    "integrated": ("Data semua instansi yang mengirim data menurut standar ini, digabung: dataset yang dianjurkan "
                   "untuk dipakai.",
                   "The data of every agency that sends data under this standard, combined: the dataset to use."),
    "indicator": ("Angka yang dihitung dari dataset terintegrasi; jumlah kecil disembunyikan demi privasi.",
                  "Figures computed from the integrated datasets; small counts are suppressed for privacy."),
}
KINDS = {"harmonized": ("terharmonisasi", "harmonized"), "integrated": ("terintegrasi", "integrated"),
         "indicator": ("indikator", "indicator"), "system": ("sistem instansi", "agency system")}
CLASSIFICATIONS = {"publik": ("publik", "public"), "terbatas": ("terbatas", "restricted"),
                   "rahasia": ("rahasia", "confidential")}
FREQUENCIES = {"harian": ("harian", "daily"), "mingguan": ("mingguan", "weekly"), "bulanan": ("bulanan", "monthly"),
               "triwulanan": ("triwulanan", "quarterly"), "semesteran": ("semesteran", "half-yearly"),
               "tahunan": ("tahunan", "yearly"), "tidak_tetap": ("tidak tetap", "irregular")}
RUN_STATUSES = {"published": ("terbit", "published"), "unchanged": ("tidak berubah", "unchanged"),
                "failed": ("gagal", "failed")}
FACET_NAMES = ("topic", "kind", "agency", "standard", "tag", "classification")
# What the search shows when no kind and no agency is chosen: one dataset per topic, not each agency's copy of it.
DEFAULT_KINDS = ("integrated", "indicator")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(number=number, file_size=file_size, percent=_percent, when=_when)
    return env


def _percent(value, lang: str) -> str:
    if value is None:
        return "–"
    text = f"{value * 100:.1f}%"
    return text.replace(".", ",") if lang == "id" else text


def _when(value: str | None) -> str:
    """An ISO time from the catalog (UTC) as `2026-11-29 09:05 UTC`."""
    return f"{value[:10]} {value[11:16]} UTC" if value else "–"


class _Page:
    """What every template sees of the request: the language, its labels, links that keep the language, and
    who is signed in (`who`; `stale` when the sign-in cookie no longer names a valid token)."""

    def __init__(self, request: Request, who: Identity = Identity.ANONYMOUS, stale: bool = False):
        self.request, self.lang, self.who, self.stale = request, _language(request), who, stale
        self.other = LANGUAGES[1 - LANGUAGES.index(self.lang)]

    def t(self, key: str) -> str:
        return LABELS[key][LANGUAGES.index(self.lang)]

    def pick(self, table: dict, key: str | None) -> str:
        """`key` translated through one of the small tables (kinds, classifications, ...); unknown keys as is."""
        return table[key][LANGUAGES.index(self.lang)] if key in table else (key or "–")

    def title(self, d: Dataset) -> str:
        """A dataset's title in this page's language."""
        return _localized(d, self.lang)[0]

    def href(self, path: str, query: list[tuple[str, str]] | dict | None = None, fragment: str = "") -> str:
        pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
        pairs = [(k, v) for k, v in pairs if v not in (None, "")] + [("lang", self.lang)]
        return f"{path}?{urlencode(pairs)}" + (f"#{fragment}" if fragment else "")

    def here(self) -> str:
        """This page's path and query, to come back to (after signing in)."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def switch(self) -> str:
        """The language switch link: it sets the cookie, then comes back to this page in the other language."""
        here = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        back = self.request.url.path + (f"?{urlencode(here)}" if here else "")
        return f"/language/{self.other}?{urlencode({'next': back})}"


def _signed_in(settings, request: Request) -> tuple[Identity, bool]:
    """Who the sign-in cookie names, and whether it is stale (expired, revoked: then the page drops it)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return Identity.ANONYMOUS, False
    try:
        return authenticate(settings, f"Bearer {token}", client_of(request) or "unknown"), False
    except (AuthenticationError, TooManyAttempts):
        return Identity.ANONYMOUS, True


def _language(request: Request) -> str:
    for candidate in (request.query_params.get("lang"), request.cookies.get("lang")):
        if candidate in LANGUAGES:
            return candidate
    return LANGUAGES[0]


def _localized(d: Dataset, lang: str) -> tuple[str, str]:
    """A dataset's title and description in `lang`. A source's own title and description exist in Indonesian
    only: in English, every dataset is described by its standard's `x-title-en` and `x-description-en`, a
    harmonized one with its agency's name, an integrated one marked so."""
    if lang != "en":
        return d.title, d.description
    schema = _standard_of(d).schema
    title_en = schema.get("x-title-en")
    if not title_en:
        return d.title, d.description
    if d.kind == "integrated":
        title_en = f"{title_en} (integrated)"
    elif d.kind == "harmonized" and d.agency_name:
        title_en = f"{title_en}: {d.agency_name}"
    return title_en, schema.get("x-description-en") or d.description


def _on_this_site(url: str) -> tuple[str, list[tuple[str, str]]]:
    """The path and query of `url` if it is a page of this site, else the home page: the language switch must
    not become a way to send people elsewhere (browsers read `//host` and `/\\host` as another site)."""
    target = urlsplit(url)
    if target.scheme or target.netloc or not target.path.startswith("/") or target.path.startswith("//") \
            or "\\" in target.path:
        return "/", []
    return target.path, parse_qsl(target.query, keep_blank_values=True)


def _standard_of(d: Dataset):
    from schemas import load_standard

    return load_standard(f"{d.standard}@{d.standard_version}")


# --- lineage picture ------------------------------------------------------------------------------------

_BOX_WIDTH, _BOX_HEIGHT, _COLUMN_GAP, _ROW_GAP, _MARGIN = 230, 66, 64, 18, 8
_LINE_CHARACTERS = 26  # of a bold 13px label that fit in a box


def _lineage_picture(graph: dict, page: _Page) -> dict:
    """Boxes and arrows of a lineage graph, layered left to right: each node one column right of its inputs."""
    upstream: dict[str, list[str]] = {n["id"]: [] for n in graph["nodes"]}
    for e in graph["edges"]:
        upstream[e["to"]].append(e["from"])
    layers: dict[str, int] = {}

    def layer(node: str, seen: frozenset = frozenset()) -> int:
        if node not in layers:
            inputs = [u for u in upstream.get(node, []) if u not in seen]  # a cycle would be a catalog bug
            layers[node] = 1 + max((layer(u, seen | {node}) for u in inputs), default=-1)
        return layers[node]

    columns: dict[int, list[dict]] = {}
    for n in sorted(graph["nodes"], key=lambda n: (n["agency"] or "", n["id"])):
        columns.setdefault(layer(n["id"]), []).append(n)
    tallest = max((len(c) for c in columns.values()), default=0)
    height = tallest * (_BOX_HEIGHT + _ROW_GAP) - _ROW_GAP + 2 * _MARGIN
    boxes = {}
    for column, nodes in columns.items():
        top = (height - len(nodes) * (_BOX_HEIGHT + _ROW_GAP) + _ROW_GAP) / 2  # centred in its column
        for row, n in enumerate(nodes):
            lines = textwrap.wrap(n["title"], _LINE_CHARACTERS, max_lines=2, placeholder="…")
            caption = page.pick(KINDS, n["kind"]) + (f" · {n['agency']}" if n["agency"] else "")
            boxes[n["id"]] = {
                **n, "x": _MARGIN + column * (_BOX_WIDTH + _COLUMN_GAP), "y": top + row * (_BOX_HEIGHT + _ROW_GAP),
                "lines": lines, "caption": caption, "current": n["id"] == graph["dataset"],
                "href": None if n["kind"] == "system" else page.href(f"/dataset/{n['id']}"),
            }
    arrows = []
    for e in graph["edges"]:
        a, b = boxes[e["from"]], boxes[e["to"]]
        x1, y1 = a["x"] + _BOX_WIDTH, a["y"] + _BOX_HEIGHT / 2
        x2, y2 = b["x"] - 4, b["y"] + _BOX_HEIGHT / 2  # stop short: the arrow head sits outside the box
        bend = (x2 - x1) / 2
        arrows.append({"d": f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}",
                       "relation": e["relation"]})
    width = len(columns) * (_BOX_WIDTH + _COLUMN_GAP) - _COLUMN_GAP + 2 * _MARGIN
    return {"width": width, "height": height, "box_width": _BOX_WIDTH, "box_height": _BOX_HEIGHT,
            "boxes": list(boxes.values()), "arrows": arrows}


# --- dataset page parts ---------------------------------------------------------------------------------


# Made again when the standard's file or one of its code lists changes (hub.followed).
_dictionaries = Followed("data dictionary")


def _dictionary(ref: str) -> dict:
    """The data dictionary of standard `ref` (name@version), as its files are (or their last good version)."""
    from schemas import load_standard
    from schemas.dictionary import dictionary
    from schemas.standards import files_of

    standard = load_standard(ref)
    return _dictionaries.get(ref, files_of(standard), lambda: dictionary(standard))


def _problems(error: ConfigError, standard=None) -> list[Problem]:
    """A ConfigError as problems: a BrokenFile's own, else one on the standard's file (by name only)."""
    if isinstance(error, BrokenFile):
        return error.problems
    return [Problem(str(standard.path) if standard else "", None, None, str(error))]


def _validation_rows(validation: dict) -> list[dict]:
    """The last run's checks, one per expectation in the suite's order, with each rule in words."""
    try:
        words = {r["reason"]: r for f in _dictionary(validation["suite"])["fields"] for r in f["rules"]}
    except ConfigError:  # that version's file is gone or broken: the checks keep their reason codes
        words = {}
    rows = []
    for reason, check in validation.get("checks", {}).items():
        rule = words.get(reason, {})
        rows.append({"reason": reason, "column": reason.partition(":")[0], "expectation": check["expectation"],
                     "text": rule.get("text", reason), "text_en": rule.get("text_en", reason),
                     "checked": check["element_count"], "unexpected": check["unexpected_count"],
                     "share": check["unexpected_count"] / check["element_count"] if check["element_count"] else 0,
                     "success": check["unexpected_count"] == 0})
    return rows


def _preview(settings, d: Dataset, standard, snapshot_ids: set[int], version: str | None, filter_text: str,
             q: str, sort: str, start: int, who: Identity, client: str | None, lang: str) -> dict:
    """A page of a version's rows as `who` may see them (catalog.rows), coded values with their labels and
    fields with their titles in `lang`; or the reason they cannot be shown."""
    from catalog.rows import page, parse_filter, parse_sort
    from schemas.codelists import labels

    if version and not (version.isdigit() and int(version) in snapshot_ids):
        return {"page": None, "error": None, "missing_version": version}
    try:
        where = [parse_filter(filter_text)] if filter_text else []
        rows = page(settings, d, who, client, snapshot_id=int(version) if version else None,
                    where=where, q=q or None, sort=parse_sort(sort), limit=PREVIEW_ROWS, offset=start)
    except (QueryError, Busy) as e:
        return {"page": None, "error": str(e), "missing_version": None}
    fields = {f.name: f for f in standard.fields}
    columns = []
    for column in rows["fields"]:
        f = fields.get(column["name"])
        try:
            names = labels(f.code_list, lang) if f is not None and f.code_list else None
        except ConfigError:  # the list does not load: its codes show as they are
            names = None
        title = (f.title_en if lang == "en" and f.title_en else f.title) if f is not None else column["name"]
        columns.append({"name": column["name"], "title": title, "labels": names})
    query = [("filter", filter_text), ("q", q), ("sort", sort)]
    pages = {"first": 0 if start > 0 else None, "previous": max(0, start - PREVIEW_ROWS) if start > 0 else None,
             "next": start + PREVIEW_ROWS if start + PREVIEW_ROWS < rows["total"] else None}
    return {"page": rows, "columns": columns, "error": None, "missing_version": None, "start": start,
            "pages": pages, "query": query}


def _api_examples(base: str, d: Dataset, filter_text: str = "", q: str = "", sort: str = "",
                  start: int = 0) -> dict:
    """curl calls for the dataset, the first one for the preview's own filter and page."""
    sql = f'{{"sql": "SELECT count(*) AS n FROM {d.id}"}}'
    token = "" if d.classification == "publik" else " -H \"Authorization: Bearer $HUB_TOKEN\""
    query = [(k, v) for k, v in [("filter", filter_text), ("q", q), ("sort", sort)] if v]
    rows = urlencode([*query, ("limit", str(PREVIEW_ROWS)), ("offset", str(start))])
    return {
        "rows": f"curl{token} '{base}/api/datasets/{d.id}/rows?{rows}'",
        "sql": f"curl{token} -X POST '{base}/api/sql' -H 'Content-Type: application/json' -d '{sql}'",
        "ckan": f"{base}/api/3/action/datastore_search?{urlencode({'resource_id': d.id, 'limit': 5})}",
        "filtered": bool(query),
        "downloads": {fmt: f"/api/datasets/{d.id}/download.{fmt}" + (f"?{urlencode(query)}" if query else "")
                      for fmt in ("csv", "json", "parquet")},
    }


# Drawn figures by dataset version, language and the columns the viewer sees plain: a version never changes.
_drawn: dict[tuple, list] = {}


def _figures(settings, d: Dataset, standard, page: _Page, seen, versions: list[dict]) -> list:
    """The dataset's charts and maps for the viewer (serving.figures); none when its rows cannot be read now."""
    from catalog.access import PLAIN
    from serving.figures import figures

    plain = tuple(sorted(f.name for f in standard.fields if seen.column(f.name) == PLAIN))
    key = (d.id, d.snapshot_id, standard.ref, page.lang, plain, tuple(v["snapshot_id"] for v in versions[:12]))
    if key in _drawn:
        return _drawn[key]
    try:
        drawn = figures(settings, d, standard, page.who, page.lang, lambda v: number(v, page.lang), versions)
    except (QueryError, Busy, AccessDenied) as e:
        log.warning("portal: the figures of %s cannot be drawn: %s", d.id, e)
        return []
    if len(_drawn) > 256:
        _drawn.clear()
    _drawn[key] = drawn
    return drawn


# --- SQL page -------------------------------------------------------------------------------------------


def _example_queries(datasets: list[Dataset]) -> list[str]:
    """Queries that run on this catalog: a look at a table, a count by a coded field, and a join of two sources."""
    if not datasets:
        return []
    first = next((d for d in datasets if d.kind == "integrated"), datasets[0])
    examples = [f"SELECT * FROM {first.id} LIMIT 10"]
    column = next((f.name for f in _standard_of(first).fields if f.code_list and not f.personal_data), None)
    if column is None:
        return examples
    examples.append(f"SELECT {column}, count(*) AS n FROM {first.id} GROUP BY {column} ORDER BY n DESC")
    siblings = [d for d in datasets if d.kind == "harmonized" and d.standard == first.standard][:2]
    if len(siblings) == 2:
        a, b = siblings
        examples.append(
            f"SELECT a.{column}, a.n AS {a.id}, b.n AS {b.id}\n"
            f"FROM (SELECT {column}, count(*) AS n FROM {a.id} GROUP BY {column}) AS a\n"
            f"JOIN (SELECT {column}, count(*) AS n FROM {b.id} GROUP BY {column}) AS b USING ({column})\n"
            f"ORDER BY a.n DESC")
    return examples


def _cell(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- agencies -------------------------------------------------------------------------------------------


def _registered_sources(settings) -> list:
    from connectors.registry import load_sources

    try:
        return load_sources(settings.registry, settings.home)
    except HubError as e:
        # The catalog still knows every source that ever published; the page shows those.
        log.warning("portal: the source registry cannot be read: %s", e)
        return []


def _agencies(settings, s, who: Identity) -> dict[str, dict]:
    """Every agency the registry or the catalog knows: code -> name, its source ids and its dataset ids; of
    those, only what `who` may know of (a source of `rahasia` data only for those cleared for it)."""
    from schemas import load_standard

    agencies: dict[str, dict] = {}
    datasets = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.agency_code.is_not(None)))}
    for source in _registered_sources(settings):
        entry = agencies.setdefault(source.agency_code, {"code": source.agency_code, "name": source.agency_name,
                                                         "sources": {}, "datasets": set()})
        try:
            standard = load_standard(source.standard_ref)
        except HubError:
            continue  # `hub sources check` names the problem; the portal shows the source once it publishes
        # Not published yet: the source's standard says what its dataset will be.
        shown = datasets.get(source.id) or Dataset(id=source.id, classification=standard.classification,
                                                   agency_code=source.agency_code)
        if access_to(who, shown, standard).listed:
            entry["sources"][source.id] = source
    known = listed(settings, who)
    for d in datasets.values():
        entry = agencies.setdefault(d.agency_code, {"code": d.agency_code, "name": d.agency_name,
                                                    "sources": {}, "datasets": set()})
        if d.id in known:
            entry["datasets"].add(d.id)
    return dict(sorted(agencies.items()))


# --- routes ---------------------------------------------------------------------------------------------


def problem_page(request: Request, error: ConfigError) -> HTMLResponse:
    """The page of a request that needs a standard, code list or setting that cannot be loaded (503: it answers
    again once the file is fixed). A file's problem is shown by the file's name, place and message; any other
    configuration error only in the server's log. Never a traceback."""
    page = _Page(request)
    problems = [x.public() for x in error.problems] if isinstance(error, BrokenFile) else []
    html = _environment().get_template("unavailable.html").render(p=page, lang=page.lang, problems=problems)
    response = HTMLResponse(html, status_code=503)
    response.headers["Cache-Control"] = "no-store"
    return response


def _prepare_maps() -> None:
    from serving import maps

    for level in ("kecamatan", "kelurahan"):
        maps.choropleth({}, level=level, caption="", lang=LANGUAGES[0], number=str)


def _private(response: HTMLResponse) -> HTMLResponse:
    """A page with a secret, a token or an address on it: never cached, and its URL never sent on as a Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def router(settings) -> APIRouter:
    from catalog.metadata import describe, lineage, quarantine_summary, summary
    from catalog.search import search
    from catalog.subscriptions import (EVENTS, NotFound, SubscriptionError, confirm, smtp_settings, subscribe,
                                       unsubscribe)

    templates = _environment()
    r = APIRouter(include_in_schema=False)
    # Placing the maps' labels takes most of a second once per process: done now, not in someone's request.
    threading.Thread(target=_prepare_maps, name="portal-maps", daemon=True).start()

    def render(page: _Page, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = templates.get_template(template).render(p=page, lang=page.lang, **context)
        response = HTMLResponse(html, status_code=status_code)
        if page.stale:
            response.delete_cookie(COOKIE)
        if not page.who.anonymous:
            response.headers["Cache-Control"] = "no-store"  # a page for one signed-in person
        return response

    def page_of(request: Request) -> _Page:
        return _Page(request, *_signed_in(settings, request))

    def not_found(page: _Page, message_key: str, name: str) -> HTMLResponse:
        return render(page, "not_found.html", 404, message_key=message_key, name=name)

    @r.get("/static/portal.css")
    def stylesheet() -> FileResponse:
        return FileResponse(_STATIC / "portal.css", media_type="text/css")

    @r.get("/language/{lang}")
    def set_language(lang: str, next: str = "/") -> Response:
        if lang not in LANGUAGES:
            lang = LANGUAGES[0]
        path, query = _on_this_site(next)
        query = [(k, v) for k, v in query if k != "lang"] + [("lang", lang)]
        response = RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        return response

    @r.get("/", response_class=HTMLResponse)
    def home_page(request: Request) -> Response:
        """The city's dashboard; a search's address from before the search had its own page goes there."""
        from serving.dashboard import home

        if any(k in request.query_params for k in ("q", "page", "sort", *FACET_NAMES)):
            return RedirectResponse(f"/search?{request.url.query}", status_code=301)
        p = page_of(request)
        try:
            context = home(settings, p.who, p.lang)
        except BrokenFile as e:
            return problem_page(request, e)
        return render(p, "home.html", **context, spotlight=_spotlight(context["featured"], p))

    def _spotlight(featured: list[dict], p: _Page) -> dict | None:
        """The first map of the featured datasets the visitor may read, to show the city at a glance."""
        known = listed(settings, p.who)
        for item in featured:
            seen = known.get(item["id"])
            if seen is None or not seen.readable:
                continue
            with session(settings.catalog_url) as s:
                d = s.get(Dataset, item["id"])
                versions = describe(s, d)["versions"] if d is not None else []
            try:
                drawn = _figures(settings, d, _standard_of(d), p, seen, versions) if d is not None else []
            except ConfigError:  # its standard does not load: the dataset's own page says so
                continue
            maps = [f for f in drawn if f.startswith('<figure class="map"')]
            if maps:
                return {"title": item["title"], "href": item["href"], "figure": maps[0]}
        return None

    @r.get("/site/emblem")
    def emblem() -> FileResponse:
        path = site().emblem
        if path is None:
            raise HTTPException(404, "this site has no emblem")
        return FileResponse(path, media_type="image/svg+xml" if path.suffix.lower() == ".svg" else "image/png")

    @r.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, q: str = "", topic: list[str] = Query([]), kind: list[str] = Query([]),
                    agency: list[str] = Query([]), standard: list[str] = Query([]), tag: list[str] = Query([]),
                    classification: list[str] = Query([]),
                    sort: str = Query("relevance", pattern="^(relevance|title|modified)$"),
                    page: int = Query(1, ge=1)) -> HTMLResponse:
        from catalog.search import expand, words
        from schemas.topics import topics

        p = page_of(request)
        chosen = {"topic": topic, "kind": kind, "agency": agency, "standard": standard, "tag": tag,
                  "classification": classification}
        filters = {k: v for k, v in chosen.items() if v}
        among = set(listed(settings, p.who))
        # Integrated datasets lead; an agency's own copies show when asked for (by kind or by agency).
        leading = not kind and not agency
        found = search(settings, q, {**filters, "kind": list(DEFAULT_KINDS)} if leading else filters,
                       rows=PAGE_SIZE, start=(page - 1) * PAGE_SIZE, sort=sort, among=among)
        if leading:  # kinds and agencies are counted over every kind, so the agencies' copies can be chosen
            found["facets"].update(search(settings, q, filters, facets=("kind", "agency"), rows=0,
                                          among=among)["facets"])
        hidden = found["facets"]["kind"].get("harmonized", 0) if leading else 0
        with session(settings.catalog_url) as s:
            by_id = {d.id: d for d in s.scalars(select(Dataset).where(Dataset.id.in_(found["results"])))}
            agency_names = dict(s.execute(select(Dataset.agency_code, Dataset.agency_name)
                                          .where(Dataset.agency_code.is_not(None))).all())
        results = []
        for dataset_id in found["results"]:
            d = by_id.get(dataset_id)
            if d is not None:
                title, description = _localized(d, p.lang)
                results.append({**summary(d), "title": title, "description": description})
        base = [("q", q), *[(f, v) for f in FACET_NAMES for v in chosen[f]], ("sort", sort)]

        def toggled(facet: str, value: str) -> list[tuple[str, str]]:
            pair = (facet, value)
            return [x for x in base if x != pair] if pair in base else [*base, pair]

        topic_names = {t.id: t.title_en if p.lang == "en" else t.title for t in topics()}
        names = {"agency": agency_names, "topic": topic_names,
                 "kind": {k: p.pick(KINDS, k) for k in KINDS}, "classification": {
                     k: p.pick(CLASSIFICATIONS, k) for k in CLASSIFICATIONS}}
        facets = [{"name": f, "values": [{"value": v, "count": n, "selected": v in chosen[f], "toggle": toggled(f, v),
                                          "label": names.get(f, {}).get(v, v)}
                                         for v, n in found["facets"].get(f, {}).items()]}
                  for f in FACET_NAMES]
        pages = max(1, math.ceil(found["count"] / PAGE_SIZE))
        asked = " ".join(words(q))
        also = list(dict.fromkeys(" ".join(term) for position in expand(q) if len(position) > 1
                                  for term in position if " ".join(term) not in asked))
        return render(p, "search.html", q=q, sort=sort, base=base, facets=facets, results=results,
                      count=found["count"], page_number=page, pages=pages, hidden=hidden, also=also,
                      show_hidden=[*base, ("kind", "harmonized")],
                      any_filter=any(chosen.values()), classifications=CLASSIFICATIONS, kinds=KINDS,
                      kind_notes=KIND_NOTES)

    @r.get("/dataset/{dataset_id}", response_class=HTMLResponse)
    def dataset_page(request: Request, dataset_id: str, version: str = "", filter: str = "", q: str = "",
                     sort: str = "", start: int = Query(0, ge=0)) -> HTMLResponse:
        """The dataset's page; its DCAT-AP RDF where `Accept` prefers Turtle, JSON-LD or RDF/XML to HTML."""
        from serving import dcat

        if dcat.negotiate(request.headers.get("accept"), [dcat.HTML, *dcat.RDF_MEDIA]) != dcat.HTML:
            return dcat.answer(settings, request, page_of(request).who, f"catalog/datasets/{dataset_id}")
        shown = dataset_view(request, dataset_id, version, filter, q, sort, start)
        shown.headers.append("Vary", "Accept")
        return shown

    def dataset_view(request: Request, dataset_id: str, version: str = "", filter: str = "", q: str = "",
                     sort: str = "", start: int = 0, subscription: dict | None = None) -> HTMLResponse:
        """The dataset page; `subscription` is the subscription form as posted, with the reason it was refused."""
        p = page_of(request)
        email = smtp_settings().host is not None
        form = subscription or {"channel": "email" if email else "webhook", "target": "", "events": list(EVENTS),
                                "error": None, "field": None}
        known = listed(settings, p.who)
        with session(settings.catalog_url) as s:
            d = s.get(Dataset, dataset_id)
            if d is not None and d.id not in known and d.classification != "rahasia":
                _standard_of(d)  # left out of `known` because its standard never loaded: the problem page says so
            if d is None or d.id not in known:
                return not_found(p, "no_dataset", dataset_id)
            [about] = described(settings, s, [d], p.who)
            graph = lineage(s, d, set(known))
            quarantine = quarantine_summary(s, d, limit=0)
        from schemas import load_problems

        standard = _standard_of(d)
        title, description = _localized(d, p.lang)
        validation = about["quality"]["validation"] or {}
        seen = known[d.id]
        preview = _preview(settings, d, standard, {v["snapshot_id"] for v in about["versions"]}, version,
                           filter, q, sort, start, p.who, client_of(request), p.lang) if seen.readable else None
        shown_figures = _figures(settings, d, standard, p, seen, about["versions"]) if seen.readable else []
        try:
            dictionary, problems = _dictionary(standard.ref), []
        except ConfigError as e:  # a code list it names never loaded: the rest of the page still shows
            dictionary, problems = None, _problems(e, standard)
        # Files of this standard or its code lists that broke: the page shows their last good version, and says so.
        problems = sorted({*problems, *load_problems(standard)}, key=Problem.sort_key)
        return render(p, "dataset.html", d=about, title=title, description=description,
                      dictionary=dictionary, problems=[x.public() for x in problems], validation=validation,
                      checks=_validation_rows(validation) if "checks" in validation else [],
                      quarantine=quarantine, picture=_lineage_picture(graph, p),
                      preview=preview, access=seen, version=version, filter=filter, q=q, sort=sort,
                      api=_api_examples(str(request.base_url).rstrip("/"), d, filter, q, sort, start),
                      figures=shown_figures, site=site(), subscription=form, kind_notes=KIND_NOTES,
                      integrated=d.standard if d.kind == "harmonized" and d.standard in known else None,
                      email_available=email, events=EVENTS, status_code=422 if form["error"] else 200,
                      kinds=KINDS, classifications=CLASSIFICATIONS, frequencies=FREQUENCIES, statuses=RUN_STATUSES,
                      overseer=may_see_agency(p.who, d.agency_code))

    def overseen(p: _Page, dataset_id: str):
        """The dataset, if the signed-in person is a steward or its owning agency: else the page to show instead."""
        with session(settings.catalog_url) as s:
            d = s.get(Dataset, dataset_id)
        if d is None or dataset_id not in listed(settings, p.who):
            return None, not_found(p, "no_dataset", dataset_id)
        if not may_see_agency(p.who, d.agency_code):
            status = 401 if p.who.anonymous else 403
            return None, render(p, "not_found.html", status, message_key="owner_only", name=dataset_id)
        return d, None

    @r.get("/dataset/{dataset_id}/quarantine", response_class=HTMLResponse)
    def quarantine_page(request: Request, dataset_id: str, page: int = Query(1, ge=1)) -> HTMLResponse:
        """A run's quarantined rows with their reasons; the values too for the agency that sent them."""
        p = page_of(request)
        d, refused = overseen(p, dataset_id)
        if refused:
            return refused
        from catalog import audit

        from catalog.metadata import quarantine_run
        from hub.quarantine import sentences

        own = p.who.role == "agency" and p.who.agency == d.agency_code
        offset = (page - 1) * QUARANTINE_PAGE_ROWS
        with session(settings.catalog_url) as s:
            q = quarantine_summary(s, d, limit=QUARANTINE_PAGE_ROWS, offset=offset, records=own)
            run = quarantine_run(s, d, q["run_id"]) if q["run_id"] else None
        # Records as received hold personal data: each page read is in the audit log, as the API's is.
        audit.read(settings, p.who, client_of(request), "quarantine.read", d.id,
                   {"run_id": q["run_id"], "rows": len(q["rows"]), "offset": offset, "records": own})
        # Each reason in words beside its code: the rule and the form expected, never the row's value.
        sentence = sentences(settings, d, run, p.lang)
        for r in q["rows"]:
            r["explained"] = [(code, sentence(code, r["details"].get(code))) for code in r["reasons"]]
        title, _ = _localized(d, p.lang)
        return _private(render(p, "quarantine.html", d=d, q=q, own=own, title=title, page_number=page,
                               pages=max(1, math.ceil(q["rows_quarantined"] / QUARANTINE_PAGE_ROWS))))

    def quarantine_export(request: Request, dataset_id: str, fmt: str, run: str) -> Response:
        """The quarantine page's rows as a file to fix and send again (hub.quarantine): for the owning agency
        with its values, for a steward row numbers and reasons only; audited as the page is."""
        import tempfile

        from catalog import audit
        from hub.quarantine import csv_chunks, file_name, rejects, write_xlsx

        p = page_of(request)
        d, refused = overseen(p, dataset_id)
        if refused:
            return refused
        own = p.who.role == "agency" and p.who.agency == d.agency_code
        if run:
            with session(settings.catalog_url) as s:
                if s.scalar(select(Run.id).where(Run.dataset_id == d.id, Run.run_id == run)) is None:
                    return not_found(p, "no_such_run", run)
        # Written whole before it is sent, to a file of no name that spills to disk past a few megabytes: the
        # catalog is read in one thread and one short session, however slowly the file is downloaded.
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        try:
            with rejects(settings, d.id, run or None, values=own, lang=p.lang) as found:
                audit.read(settings, p.who, client_of(request), "quarantine.read", d.id,
                           {"run_id": found.run_id, "rows": found.count, "records": own, "format": fmt})
                if fmt == "csv":
                    for chunk in csv_chunks(found):
                        spool.write(chunk)
                else:
                    write_xlsx(found, spool)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise

        def body():
            with spool:
                while chunk := spool.read(1 << 16):
                    yield chunk

        media = "text/csv; charset=utf-8" if fmt == "csv" else \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return StreamingResponse(body(), media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{file_name(found, fmt)}"',
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})

    @r.get("/dataset/{dataset_id}/quarantine.csv")
    def quarantine_csv(request: Request, dataset_id: str, run: str = "") -> Response:
        return quarantine_export(request, dataset_id, "csv", run)

    @r.get("/dataset/{dataset_id}/quarantine.xlsx")
    def quarantine_xlsx(request: Request, dataset_id: str, run: str = "") -> Response:
        return quarantine_export(request, dataset_id, "xlsx", run)

    @r.get("/dataset/{dataset_id}/access", response_class=HTMLResponse)
    def access_page(request: Request, dataset_id: str) -> HTMLResponse:
        """Who read this dataset's rows, downloaded it or queried it, for stewards and its own agency."""
        from catalog.audit import who_accessed

        p = page_of(request)
        d, refused = overseen(p, dataset_id)
        if refused:
            return refused
        title, _ = _localized(d, p.lang)
        entries = list(reversed(who_accessed(settings, d.id)))[:ACCESS_PAGE_ROWS]
        return _private(render(p, "access_log.html", d=d, entries=entries, title=title))

    @r.post("/dataset/{dataset_id}/subscribe", response_class=HTMLResponse)
    def subscribe_posted(request: Request, dataset_id: str, channel: str = Form(""), target: str = Form(""),
                         events: list[str] = Form([])) -> HTMLResponse:
        p = page_of(request)
        try:
            if dataset_id not in listed(settings, p.who):
                raise NotFound(f"no dataset {dataset_id!r}", "dataset")
            answer = subscribe(settings, dataset_id, channel, target, events, who=p.who)
        except NotFound:
            return not_found(p, "no_dataset", dataset_id)
        except SubscriptionError as e:
            refused = {"channel": channel, "target": target, "events": events, "error": str(e), "field": e.field}
            page = dataset_view(request, dataset_id, subscription=refused)
            page.status_code = e.status  # 401: a webhook needs signing in; 429: a limit; else 422
            return _private(page)
        with session(settings.catalog_url) as s:
            title, _ = _localized(s.get(Dataset, dataset_id), p.lang)
        return _private(render(p, "subscribed.html", answer=answer, title=title))

    def link_page(request: Request, action: str, token: str, act: bool = False) -> HTMLResponse:
        """The page a mail's link opens: a button to press (GET changes nothing), or what pressing it did."""
        outcome, unknown = None, not token
        if act and not unknown:
            try:
                outcome = {"confirm": confirm, "unsubscribe": unsubscribe}[action](settings, token)
            except NotFound:
                unknown = True
        return _private(render(page_of(request), "subscription_link.html", 404 if unknown else 200, action=action,
                               token=token, outcome=outcome, unknown=unknown))

    @r.get("/subscriptions/confirm", response_class=HTMLResponse)
    def confirm_page(request: Request, token: str = "") -> HTMLResponse:
        return link_page(request, "confirm", token)

    @r.post("/subscriptions/confirm", response_class=HTMLResponse)
    def confirm_posted(request: Request, token: str = Form("")) -> HTMLResponse:
        return link_page(request, "confirm", token, act=True)

    @r.get("/subscriptions/unsubscribe", response_class=HTMLResponse)
    def unsubscribe_page(request: Request, token: str = "") -> HTMLResponse:
        return link_page(request, "unsubscribe", token)

    @r.post("/subscriptions/unsubscribe", response_class=HTMLResponse)
    def unsubscribe_posted(request: Request, token: str = Form("")) -> HTMLResponse:
        return link_page(request, "unsubscribe", token, act=True)

    def sql_page(request: Request, sql: str) -> HTMLResponse:
        from catalog.sql import run_sql

        p = page_of(request)
        result = error = busy = None
        if sql.strip():
            try:
                result = run_sql(settings, sql, p.who, client_of(request), max_rows=SQL_PAGE_ROWS)
                result["rows"] = [[_cell(v) for v in row.values()] for row in result.pop("table").to_pylist()]
            except (QueryError, AccessDenied) as e:
                error = str(e)
            except Busy as e:
                error, busy = str(e), e
        readable = {i for i, a in listed(settings, p.who).items() if a.readable}
        with session(settings.catalog_url) as s:
            datasets = [d for d in s.scalars(select(Dataset).order_by(Dataset.id)) if d.id in readable]
        answer = render(p, "sql.html", 503 if busy else 400 if error else 200, sql=sql, result=result, error=error,
                        examples=_example_queries(datasets), datasets=datasets)
        if busy:
            answer.headers["Retry-After"] = str(busy.retry_after)
        return answer

    @r.get("/sql", response_class=HTMLResponse)
    def sql_form(request: Request, sql: str = "") -> HTMLResponse:
        return sql_page(request, sql)

    @r.post("/sql", response_class=HTMLResponse)
    def sql_posted(request: Request, sql: str = Form("")) -> HTMLResponse:
        return sql_page(request, sql)

    @r.post("/sql.csv")
    def sql_csv(request: Request, sql: str = Form("")) -> Response:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        from catalog.sql import run_sql

        try:
            table = run_sql(settings, sql, page_of(request).who, client_of(request))["table"]
        except (QueryError, AccessDenied, Busy):
            return sql_page(request, sql)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        return Response(sink.getvalue().to_pybytes(), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="query.csv"'})

    @r.get("/agencies", response_class=HTMLResponse)
    def agencies_page(request: Request) -> HTMLResponse:
        p = page_of(request)
        with session(settings.catalog_url) as s:
            agencies = _agencies(settings, s, p.who)
        return render(p, "agencies.html", agencies=agencies.values())

    @r.get("/agency/{code}", response_class=HTMLResponse)
    def agency_page(request: Request, code: str) -> HTMLResponse:
        """An agency's sources with their last runs; a run's error only for stewards and the agency itself, and
        a source of `rahasia` data only for those cleared for it."""
        p = page_of(request)
        with session(settings.catalog_url) as s:
            agency = _agencies(settings, s, p.who).get(code)
            if agency is None:
                return not_found(p, "no_agency", code)
            rows = []
            for source_id in sorted(set(agency["sources"]) | agency["datasets"]):
                source, d = agency["sources"].get(source_id), s.get(Dataset, source_id)
                last = s.scalars(select(Run).where(Run.dataset_id == source_id).order_by(Run.id.desc()).limit(1)).first()
                rows.append({"id": source_id, "title": p.title(d) if d is not None else source.title,
                             "standard": source.standard_ref if source else f"{d.standard}@{d.standard_version}",
                             "kind": source.kind if source else None, "schedule": source.schedule if source else None,
                             "dataset": d is not None, "run": last})
        return render(p, "agency.html", agency=agency, rows=rows, statuses=RUN_STATUSES,
                      show_errors=may_see_agency(p.who, code))

    @r.get("/agency/{code}/exchange", response_class=HTMLResponse)
    def agency_exchange_page(request: Request, code: str) -> HTMLResponse:
        """The services an agency offers on the service bus: who is granted each and why, and the last calls to
        them from the message log. For stewards and the agency itself (a grant names other agencies' systems)."""
        from exchange.clients import list_grants
        from exchange.messagelog import calls_to
        from exchange.registry import current_services

        p = page_of(request)
        if not may_see_agency(p.who, code):
            status = 401 if p.who.anonymous else 403
            return render(p, "not_found.html", status, message_key="provider_only", name=code)
        services, _ = current_services(settings)
        own = [s for s in services if s.id.member_code == code]
        grants = [g for g in list_grants(settings, include_revoked=True)
                  if any(g["service"] == str(s.id) for s in own)]
        calls = calls_to(settings, code, EXCHANGE_PAGE_CALLS)
        return _private(render(p, "agency_exchange.html", code=code, services=own, grants=grants, calls=calls))

    def cross_site(request: Request) -> str | None:
        """Why a sign-in or sign-out request comes from another site, or None. A browser says where a form was
        sent from and no page can change what it says: current browsers in Sec-Fetch-Site, older ones in Origin
        (which is "null" from a page with Referrer-Policy no-referrer, hence Sec-Fetch-Site first). A request
        with neither comes from no browser (curl, a script): it carries nobody else's cookie, so it is let
        through; the cookie's SameSite=Strict keeps other sites' requests from carrying it anyway."""
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            if site in ("same-origin", "none"):  # "none": the person's own doing (typed, bookmarked)
                return None
            return f"the browser says the form was sent from another site (Sec-Fetch-Site: {site[:30]})"
        origin = request.headers.get("origin")
        if origin is None:
            return None
        own, sent = request.url, urlsplit(origin)
        defaults = {"http": 80, "https": 443}
        try:
            same = (sent.scheme, sent.hostname, sent.port or defaults.get(sent.scheme)) == \
                   (own.scheme, own.hostname, own.port or defaults.get(own.scheme))
        except ValueError:  # a port that is not a number
            same = False
        if same:
            return None
        return (f"the form was sent from another site ({origin[:100]}), not from this portal "
                f"({own.scheme}://{own.netloc}); sign in and out from the portal's own pages")

    @r.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        page = _private(render(page_of(request), "login.html", next=next, error=None))
        # Its URL holds no secret; same-origin lets a browser without Sec-Fetch-Site name this page's origin
        # when it posts the form (no-referrer makes that Origin "null", which cross_site cannot tell apart).
        page.headers["Referrer-Policy"] = "same-origin"
        return page

    @r.post("/login", response_class=HTMLResponse)
    def login_posted(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
        p = page_of(request)
        refused = cross_site(request)  # another site signing a visitor in to its own account, say
        if refused:
            return _private(render(p, "login.html", 403, next="/", error=refused, error_label="login_refused"))
        try:
            who = authenticate(settings, f"Bearer {token.strip()}", client_of(request) or "unknown")
        except TooManyAttempts as e:
            return _private(render(p, "login.html", 429, next=next, error=str(e)))
        except AuthenticationError as e:
            return _private(render(p, "login.html", 401, next=next, error=str(e)))
        if who.anonymous:
            return _private(render(p, "login.html", 401, next=next, error=p.t("login_failed")))
        path, query = _on_this_site(next)
        response = RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)
        # HttpOnly: no script reads it; SameSite=Strict: no other site's form or link sends it along.
        response.set_cookie(COOKIE, token.strip(), max_age=SIGN_IN_SECONDS, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @r.post("/logout")
    def logout_posted(request: Request) -> Response:
        refused = cross_site(request)
        if refused:
            return _private(PlainTextResponse(f"Sign-out refused: {refused}.", status_code=403))
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    return r
