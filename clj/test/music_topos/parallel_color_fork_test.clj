(ns music-topos.parallel-color-fork-test
  "Tests for music-topos.parallel-color-fork on whichever transport :auto picks (in-process under JPype, else stdio)."
  (:require [clojure.data.json :as json]
            [clojure.java.io :as io]
            [clojure.test :refer [are deftest is testing]]
            [ff-mcp.bridge :as bridge]
            [music-topos.parallel-color-fork :as pcf]))

(def warm ["#FF0000" "#E67F86" [250 30 20] "D82626"])
(def cool ["#0000FF" "#1316BB" [0.1 0.2 0.9] "#2626D8"])
(def epochs 30)   ; enough to separate warm from cool; keeps the suite quick

(defn- thrown
  [f]
  (try (f) nil (catch clojure.lang.ExceptionInfo e [(ex-message e) (ex-data e)])))

(defn- learn
  [& {:as opts}]
  (pcf/ff-color-learning warm cool (merge {:epochs epochs} opts)))

(defn- record-result!
  "Appends this run's goodness to $FF_MCP_CLJ_RESULTS (JSON lines), so pytest can compare transports."
  [result]
  (when-let [path (System/getenv "FF_MCP_CLJ_RESULTS")]
    (spit (io/file path)
          (str (json/write-str {:transport (name (bridge/transport (bridge/engine)))
                                :suite "parallel-color-fork-test"
                                :goodness_pos (:goodness-pos result)
                                :goodness_neg (:goodness-neg result)
                                :margin (:margin result)
                                :accuracy (:accuracy result)})
               "\n")
          :append true)))

(deftest ff-color-learning-returns-the-cards-map
  (let [r (learn)]
    (record-result! r)
    (is (= (count warm) (count (:goodness-pos r))))
    (is (= (count cool) (count (:goodness-neg r))))
    (is (every? double? (concat (:goodness-pos r) (:goodness-neg r))))
    (is (< (apply max (:goodness-neg r)) (apply min (:goodness-pos r))) "warm scores above cool")
    (is (pos? (:margin r)))
    (is (= 1.0 (:accuracy r)))
    (is (= {:in 3 :out 16 :seed 1069} (select-keys (:layer r) [:in :out :seed])))
    (is (string? (get-in r [:layer :model])))
    (is (= ["#0000FF" "#1316BB" "#1A33E6" "#2626D8"] (:negatives r)))
    (is (false? (:negatives-drawn r)))))

(deftest the-same-seed-gives-the-same-goodness
  (let [a (learn :seed 7) b (learn :seed 7) c (learn :seed 8)]
    (is (= (:goodness-pos a) (:goodness-pos b)))
    (is (= (:goodness-neg a) (:goodness-neg b)))
    (is (not= (:goodness-pos a) (:goodness-pos c)))))

(deftest the-cards-steps-give-the-same-result-as-ff-color-learning
  (let [ff-layer (pcf/make-ff-layer 3 16 :epochs epochs)
        goodness-pos (pcf/compute-goodness (pcf/forward ff-layer warm))
        goodness-neg (pcf/compute-goodness (pcf/forward ff-layer cool))
        stepwise (pcf/local-update ff-layer goodness-pos goodness-neg)]
    (is (nil? (:goodness goodness-pos)) "an untrained layer has no goodness yet")
    (is (= (dissoc (learn) :layer) (dissoc stepwise :layer)))))

(deftest a-trained-layer-runs-forward-in-the-engine
  (let [{:keys [layer goodness-pos]} (learn :hidden 8)
        activations (pcf/forward layer warm)]
    (is (= 8 (:out layer)))
    (is (= goodness-pos (:goodness (pcf/compute-goodness activations))) "the same goodness as at the end of training")
    (is (every? #(<= 0.0 % 1.0) (:p-positive activations)))
    (let [scored (pcf/score-colors layer ["#FF0000" "#0000FF"])]
      (is (> (first (:p-positive scored)) (second (:p-positive scored)))))))

(deftest nil-negatives-are-drawn-by-the-engine
  (let [r (pcf/ff-color-learning ["#FF0000" "#E67F86"] nil :epochs 5)]
    (is (true? (:negatives-drawn r)))
    (is (= 16 (count (:negatives r)) (count (:goodness-neg r))))))

(deftest bad-input-gives-ex-info-with-a-clear-message
  (are [pos neg pattern] (re-find pattern (first (thrown #(pcf/ff-color-learning pos neg :epochs 1))))
    ["#GG0000"] cool #"positive-colors\[0\]: .*hex needs exactly 6 hex digits.*#GG0000"
    warm ["#0000FF" "#12345"] #"negative-colors\[1\]: .*#12345"
    warm [[256 0 0]] #"negative-colors\[0\]: integer channels must be in \[0, 255\]"
    [] cool #"positive-colors must be a non-empty sequence of colors"
    warm [] #"negative-colors must be a non-empty sequence of colors"
    "#FF0000" cool #"positive-colors must be a non-empty sequence")
  (is (re-find #"in must be 3" (first (thrown #(pcf/make-ff-layer 4 16)))))
  (is (re-find #"out must be an integer in \[1, 1024\]" (first (thrown #(pcf/make-ff-layer 3 0)))))
  (is (re-find #"seed must be an integer" (first (thrown #(pcf/ff-color-learning warm cool :seed -1)))))
  (is (re-find #"needs a trained layer" (first (thrown #(pcf/score-colors (pcf/make-ff-layer 3 4) warm))))))

(deftest engine-errors-carry-the-engines-text
  (testing "a color the local checks never see, rejected by the engine itself"
    (let [[message data] (thrown #(bridge/call "ff_color_learn" {:name "bad" :positive ["#GG0000"] :epochs 1}))]
      (is (re-find #"positive\[0\]: color must be .*#GG0000" message))
      (is (= :ff-mcp/tool-error (:type data)))
      (is (= message (:server-message data)))))
  (let [[message] (thrown #(bridge/call "ff_color_score" {:model "no-such-model-xyz" :colors ["#FF0000"]}))]
    (is (re-find #"no-such-model-xyz" message))))
