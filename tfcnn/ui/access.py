"""Who may see the app: the password gate every page passes first.

On the loopback interface without ``TFCNN_APP_PASSWORD`` the app is open (only this
machine's users reach it). With a password set, a page shows only a sign-in form until the
session has given it (compared in constant time with :func:`hmac.compare_digest`). On any
other address without a password nothing is shown at all (:mod:`tfcnn.ui.serve` refuses to
start that way; this covers a Streamlit started by hand).
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from tfcnn.ui.serve import ENV_PASSWORD, check_exposure

_SIGNED_IN = "tfcnn_signed_in"


def require_access() -> None:
    """Stop the page unless this session may see it (call right after ``set_page_config``)."""
    password = os.environ.get(ENV_PASSWORD, "")
    problem = check_exposure(st.get_option("server.address"))
    if problem:
        st.error(f"The app is not available: {problem}.")
        st.stop()
    if not password or st.session_state.get(_SIGNED_IN):
        return
    st.title("Sign in")
    with st.form("sign-in"):
        given = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
            st.session_state[_SIGNED_IN] = True
            st.rerun()
        st.error("Wrong password.")
    st.stop()
