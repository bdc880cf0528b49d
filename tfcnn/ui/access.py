"""Who may see the app: the password gate every page passes first.

On the loopback interface without ``TFCNN_APP_PASSWORD`` the app is open (only this
machine's users reach it). With a password set, ``make run`` puts the sign-in gate
(:mod:`tfcnn.ui.gate`) in front of every endpoint of the server: a session that reaches a
page has signed in there. Where Streamlit was started without the gate (by hand, or
AppTest), a page shows only a sign-in form until the session has given the password
(compared in constant time with :func:`hmac.compare_digest`, wrong guesses counted by the
gate's limiter); on an address beyond this machine it shows nothing, since Streamlit's own
endpoints would be open. On any other address without a password nothing is shown at all
(:mod:`tfcnn.ui.serve` refuses to start that way; this covers a Streamlit started by hand).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from tfcnn.ui import gate
from tfcnn.ui.serve import ENV_PASSWORD, check_exposure, is_loopback

_SIGNED_IN = "tfcnn_signed_in"


def _client() -> str:
    """This session's client address as Streamlit knows it, for the guess limits."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 (no request context)
        address = None
    return address if isinstance(address, str) and address else "unknown"


def require_access() -> None:
    """Stop the page unless this session may see it (call right after ``set_page_config``)."""
    password = os.environ.get(ENV_PASSWORD, "")
    address = st.get_option("server.address")
    problem = check_exposure(address)
    if problem:
        st.error(f"The app is not available: {problem}.")
        st.stop()
    if not password or gate.GATE_ACTIVE or st.session_state.get(_SIGNED_IN) is True:
        return
    if not is_loopback(address):
        st.error("The app is not available: it was started without its sign-in gate; start "
                 "it with `make run` (python -m tfcnn.ui.serve).")
        st.stop()
    st.title("Sign in")
    with st.form("sign-in"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        client = _client()
        wait = gate.LIMITER.wait_s(client)
        if wait > 0:
            st.error(f"Too many wrong passwords: try again in {wait:.0f} s.")
        elif hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
            gate.LIMITER.succeeded(client)
            st.session_state[_SIGNED_IN] = True
            st.rerun()
        else:
            gate.LIMITER.failed(client)
            st.error("Wrong password.")
    st.stop()
