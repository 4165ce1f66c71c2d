"""The NumPy LSTM under test, in the question's convention (see lstm_compare/handrolled/question_lstm.py)."""

from lstm_compare.handrolled.question_lstm import (CACHE_FIELDS, PARAM_NAMES, dlstm, dlstm_loss, init_params, lstm,
                                                    lstm_loss, sigmoid)

__all__ = ["CACHE_FIELDS", "PARAM_NAMES", "dlstm", "dlstm_loss", "init_params", "lstm", "lstm_loss", "sigmoid"]
